package https_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hubkit/hubkit/queue/memory"
)

// BenchmarkSend measures D2C sends of 256 B over HTTPS with keep-alive
// clients (b.RunParallel: GOMAXPROCS goroutines, one connection each), each
// answered once brokertest's hub stored the message: in Pebble on disk
// (group commit with fsync), and in the memory store for comparison.
func BenchmarkSend(b *testing.B) {
	p := newPKI(b)
	b.Run("store=pebble", func(b *testing.B) { benchmarkSend(b, p, newRealHub(b, p)) })
	b.Run("store=memory", func(b *testing.B) {
		c := &clock{t: time.Now()}
		benchmarkSend(b, p, newHubOn(b, p, memory.New(memory.Options{Now: c.Now}), c))
	})
}

func benchmarkSend(b *testing.B, p *testPKI, h *realHub) {
	_, base := startBroker(b, p, h)
	c := p.client(b)
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
	url := base + "/devices/dev-1/messages/events" + apiVersion
	tok := token("dev-1", key1)
	body := bytes.Repeat([]byte("x"), 256)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header.Set("Authorization", tok)
			req.Header.Set("iothub-app-k", "v")
			res, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusNoContent {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
