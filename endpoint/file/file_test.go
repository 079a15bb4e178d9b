package file_test

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/endpointtest"
	"github.com/hubkit/hubkit/endpoint/file"
	"github.com/hubkit/hubkit/endpoint/internal/record"
	"github.com/hubkit/hubkit/hub"
)

// dirSink reads back what a file endpoint wrote under dir.
type dirSink struct {
	dir string
	enc file.Encoding
}

// files returns the final files under dir in the order they were written:
// by name, then by numeric suffix.
func (s dirSink) files(t *testing.T) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if strings.HasPrefix(d.Name(), ".tmp-") {
				return fmt.Errorf("temporary file %s left behind", path)
			}
			names = append(names, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	split := func(n string) (string, int) {
		base, suffix, ok := strings.Cut(filepath.Base(n), "-")
		k, err := strconv.Atoi(suffix)
		if !ok || err != nil {
			return n, 0
		}
		return filepath.Join(filepath.Dir(n), base), k
	}
	sort.Slice(names, func(i, j int) bool {
		a, ka := split(names[i])
		b, kb := split(names[j])
		if a != b {
			return a < b
		}
		return ka < kb
	})
	return names
}

func (s dirSink) Received(t *testing.T) []*hubkit.Message {
	var out []*hubkit.Message
	for _, name := range s.files(t) {
		if s.enc == file.Avro || s.enc == file.AvroDeflate {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := record.ReadAvroFile(b)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out = append(out, msgs...)
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			m, err := record.Unmarshal(sc.Bytes())
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out = append(out, m)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// SetFailing puts a plain file where the hub's directory goes, so that
// creating directories fails, and puts the directory back.
func (s dirSink) SetFailing(t *testing.T, on bool) {
	hub := filepath.Join(s.dir, "hub")
	if on {
		if err := os.Rename(hub, hub+".away"); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := os.WriteFile(hub, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if st, err := os.Stat(hub); err == nil && !st.IsDir() {
		os.Remove(hub)
		if err := os.Rename(hub+".away", hub); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// SetStalled is never called: writing a file cannot stall, and the
// harness says so with CannotStall.
func (dirSink) SetStalled(t *testing.T, _ bool) {
	t.Fatal("SetStalled called despite Harness.CannotStall")
}

func newEndpoint(t *testing.T, opts file.Options) *file.Endpoint {
	t.Helper()
	ep, err := file.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

func TestConformance(t *testing.T) {
	for _, enc := range []file.Encoding{file.JSON, file.Avro, file.AvroDeflate} {
		t.Run(string(enc), func(t *testing.T) {
			endpointtest.Run(t, endpointtest.Harness{
				New: func(t *testing.T) (endpoint.Endpoint, endpointtest.Sink) {
					dir := t.TempDir()
					// One fixed minute: order across files then rests on the suffixes alone.
					now := func() time.Time { return time.Date(2018, 10, 30, 10, 56, 0, 0, time.UTC) }
					ep := newEndpoint(t, file.Options{Dir: dir, HubName: "hub", Partitions: 1, MaxChunkBytes: 16 << 10, Now: now, Encoding: enc})
					return ep, dirSink{dir, enc}
				},
				CannotStall: true,
			})
		})
	}
}

func TestNames(t *testing.T) {
	at := time.Date(2018, 10, 30, 10, 56, 7, 0, time.FixedZone("x", 3600))
	for _, tc := range []struct{ format, want string }{
		{"", "ContosoTestHub/0/2018/10/30/09/56"},
		{"{YYYY}-{MM}-{DD}T{HH}{mm}_{iothub}_p{partition}.json", "2018-10-30T0956_ContosoTestHub_p0.json"},
	} {
		ep := newEndpoint(t, file.Options{Dir: t.TempDir(), HubName: "ContosoTestHub", FileNameFormat: tc.format})
		if got := filepath.ToSlash(ep.Name(0, at)); got != tc.want {
			t.Errorf("format %q: name %s, want %s", tc.format, got, tc.want)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opts file.Options
		want string
	}{
		{file.Options{HubName: "h"}, "Dir is empty"},
		{file.Options{Dir: t.TempDir()}, "HubName"},
		{file.Options{Dir: t.TempDir(), HubName: "a/b"}, "HubName"},
		{file.Options{Dir: t.TempDir(), HubName: "h", Encoding: "csv"}, "Encoding"},
		{file.Options{Dir: t.TempDir(), HubName: "h", FileNameFormat: "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}"}, "lacks {mm}"},
	} {
		if _, err := file.New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tc.opts, err, tc.want)
		}
	}
}

func TestSplitsAndSuffixes(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2018, 10, 30, 10, 56, 0, 0, time.UTC)
	ep := newEndpoint(t, file.Options{Dir: dir, HubName: "hub", MaxChunkBytes: 250, Now: func() time.Time { return now },
		Partition: func(m *hubkit.Message) int { return int(m.Body[0] - '0') }})
	var batch []*hubkit.Message
	for i := range 10 {
		batch = append(batch, &hubkit.Message{Body: []byte(fmt.Sprintf("%d-%d", i%2, i)), System: hubkit.SystemProperties{MessageID: fmt.Sprint(i)}})
	}
	if n, err := ep.Send(context.Background(), batch); n != 10 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	var got []string
	for _, f := range (dirSink{dir: dir}).files(t) {
		b, _ := os.ReadFile(f)
		rel, _ := filepath.Rel(dir, f)
		got = append(got, fmt.Sprintf("%s:%d", filepath.ToSlash(rel), strings.Count(string(b), "\n")))
	}
	// Each record is about 90 bytes: 2 fit in 250, so each partition's 5 records take three files.
	want := "hub/0/2018/10/30/10/56:2 hub/0/2018/10/30/10/56-1:2 hub/0/2018/10/30/10/56-2:1 " +
		"hub/1/2018/10/30/10/56:2 hub/1/2018/10/30/10/56-1:2 hub/1/2018/10/30/10/56-2:1"
	if strings.Join(got, " ") != want {
		t.Fatalf("files %v, want %s", got, want)
	}
}

// TestPartitionMatchesHub checks that with Partitions equal to the hub's
// Config.Partitions, {partition} is the device's partition in the hub.
func TestPartitionMatchesHub(t *testing.T) {
	now := func() time.Time { return time.Date(2018, 10, 30, 10, 56, 0, 0, time.UTC) }
	for _, parts := range []int{2, 4, 32} {
		t.Run(fmt.Sprint("partitions=", parts), func(t *testing.T) {
			h, err := hub.New(hub.Config{Dir: t.TempDir(), Partitions: parts, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close() })
			opts := file.Options{Dir: t.TempDir(), HubName: "hub", Now: now}
			if parts != 4 {
				opts.Partitions = parts
			}
			ep := newEndpoint(t, opts)
			want := map[int]int{} // files per partition
			for i := range 40 {
				dev := fmt.Sprint("device-", i)
				if n, err := ep.Send(context.Background(), []*hubkit.Message{{Body: []byte("x"), System: hubkit.SystemProperties{ConnectionDeviceID: dev}}}); n != 1 || err != nil {
					t.Fatalf("Send = %d, %v", n, err)
				}
				want[h.Partition(dev)]++
			}
			for p := range parts {
				files, err := filepath.Glob(filepath.Join(opts.Dir, ep.Name(p, now())+"*"))
				if err != nil {
					t.Fatal(err)
				}
				if len(files) != want[p] {
					t.Errorf("partition %d holds %d files, want %d (one per device message the hub puts there)", p, len(files), want[p])
				}
			}
		})
	}
}
