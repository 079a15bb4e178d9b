package hub_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
	"github.com/hubkit/hubkit/route"
)

// syncFS counts the syncs Pebble makes: what "one fsync" means on disk.
type syncFS struct {
	vfs.FS
	syncs *atomic.Int64
}

type syncFile struct {
	vfs.File
	syncs *atomic.Int64
}

func (f syncFile) Sync() error     { f.syncs.Add(1); return f.File.Sync() }
func (f syncFile) SyncData() error { f.syncs.Add(1); return f.File.SyncData() }
func (f syncFile) SyncTo(n int64) (bool, error) {
	full, err := f.File.SyncTo(n)
	if full {
		f.syncs.Add(1)
	}
	return full, err
}

func (fs syncFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return syncFile{f, fs.syncs}, nil
}

func (fs syncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs syncFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(old, name, c))
}

func (fs syncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, o ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, o...))
}

// writeCounter counts the hub's durable writes (Append and AppendAsync calls).
type writeCounter struct {
	queue.DurableQueue
	writes atomic.Int64
}

func (w *writeCounter) Append(ctx context.Context, e []queue.Entry) ([]queue.Position, error) {
	w.writes.Add(1)
	return w.DurableQueue.Append(ctx, e)
}

func (w *writeCounter) AppendAsync(ctx context.Context, e []queue.Entry, done func([]queue.Position, error)) {
	w.writes.Add(1)
	w.DurableQueue.(queue.AsyncAppender).AppendAsync(ctx, e, done)
}

// BenchmarkRouted measures routed device-to-cloud throughput on Pebble on
// disk with 1 and with 3 custom endpoints (in-process functions), every
// message matching a route to each, plus the built-in endpoint by a route
// of its own: 64 devices with 16 messages in flight each, 256-byte bodies,
// each acknowledged once durable. It reports the hub's durable writes per
// message (ingest-writes/msg), which fan-out must not raise, and every
// sync Pebble made per message (fsyncs/msg), which also counts the
// endpoints' cursor commits.
func BenchmarkRouted(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			var syncs atomic.Int64
			q, err := pebble.Open(b.TempDir(), pebble.Options{FS: syncFS{vfs.Default, &syncs}, Logger: discard()})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			wq := &writeCounter{DurableQueue: q}
			var delivered atomic.Int64
			routes := []route.Route{{Name: "builtin", Source: route.DeviceMessages, Endpoint: hub.EventsStream}}
			var eps []hub.Endpoint
			for i := range n {
				name := fmt.Sprint("ep", i)
				eps = append(eps, hub.Endpoint{Name: name, Endpoint: endpoint.Func(name, func(ctx context.Context, batch []*hubkit.Message) (int, error) {
					delivered.Add(int64(len(batch)))
					return len(batch), nil
				})})
				routes = append(routes, route.Route{Name: "to-" + name, Source: route.DeviceMessages, Endpoint: name})
			}
			router, err := route.New(route.Config{Routing: route.Routing{Routes: routes}})
			if err != nil {
				b.Fatal(err)
			}
			h, err := hub.New(hub.Config{HostName: testHost, Queue: wq, Router: router, Endpoints: eps, Logger: discard()})
			if err != nil {
				b.Fatal(err)
			}
			if err := h.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer h.Close()

			syncs.Store(0)
			b.ResetTimer()
			sent := ingestLoad(b, h)
			b.StopTimer()
			total := float64(sent)
			b.ReportMetric(total/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(wq.writes.Load())/total, "ingest-writes/msg")
			b.ReportMetric(float64(syncs.Load())/total, "fsyncs/msg")
		})
	}
}
