package pebble_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

// gatedFS holds every sync of a write-ahead log while its gate is shut.
type gatedFS struct {
	vfs.FS
	mu      sync.Mutex    // guards gate
	gate    chan struct{} // closed while syncs may pass; nil never blocks
	blocked chan struct{} // receives once per sync held at the gate
}

func (fs *gatedFS) shut() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.gate = make(chan struct{})
}

func (fs *gatedFS) open() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.gate != nil {
		close(fs.gate)
		fs.gate = nil
	}
}

func (fs *gatedFS) wait() {
	fs.mu.Lock()
	g := fs.gate
	fs.mu.Unlock()
	if g != nil {
		fs.blocked <- struct{}{}
		<-g
	}
}

func (fs *gatedFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return gatedFile{f, fs}, nil
}

func (fs *gatedFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs *gatedFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

type gatedFile struct {
	vfs.File
	fs *gatedFS
}

func (f gatedFile) Sync() error                  { f.fs.wait(); return f.File.Sync() }
func (f gatedFile) SyncData() error              { f.fs.wait(); return f.File.SyncData() }
func (f gatedFile) SyncTo(n int64) (bool, error) { f.fs.wait(); return f.File.SyncTo(n) }

// TestRequestsGatherWhileTheDiskSyncs checks that the committer, while a
// batch is being synced, gathers the requests that arrive into the next
// batch instead of handing each to Pebble alone. The store's clock moves
// on every reading, and the committer reads it once per batch, so records
// share an enqueued time exactly when they shared a batch.
func TestRequestsGatherWhileTheDiskSyncs(t *testing.T) {
	fs := &gatedFS{FS: vfs.NewMem(), blocked: make(chan struct{}, 16)}
	var tick atomic.Int64
	now := func() time.Time { return time.Unix(1700000000, tick.Add(1)*int64(time.Millisecond)) }
	s := openStore(t, "db", pebble.Options{FS: fs, Now: now})
	t.Cleanup(fs.open) // before the store closes: Close syncs
	const calls = 100
	var mu sync.Mutex
	times := map[int64]int{} // enqueued time -> records
	var wg sync.WaitGroup
	wg.Add(calls + 1)
	done := func(pos []queue.Position, err error) {
		defer wg.Done()
		if err != nil || len(pos) != 1 {
			t.Errorf("done(%v, %v)", pos, err)
			return
		}
		mu.Lock()
		times[pos[0].EnqueuedTime.UnixNano()]++
		mu.Unlock()
	}
	entry := func(i int) []queue.Entry {
		return []queue.Entry{{Stream: "s", Message: &hubkit.Message{Body: fmt.Append(nil, i)}}}
	}
	fs.shut()
	s.AppendAsync(context.Background(), entry(0), done)
	select { // the first batch is now held in its sync
	case <-fs.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("the first append never reached a sync")
	}
	for i := 1; i <= calls; i++ {
		s.AppendAsync(context.Background(), entry(i), done)
	}
	fs.open()
	wg.Wait()
	if len(times) != 2 {
		t.Errorf("%d appends made while a sync ran went into %d batches, want 1 (enqueued times and records: %v)", calls, len(times)-1, times)
	}
}
