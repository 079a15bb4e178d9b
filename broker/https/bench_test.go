package https_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkSend measures D2C sends over HTTPS with keep-alive clients
// (b.RunParallel: GOMAXPROCS x -cpu goroutines, one connection each at
// most), each answered once brokertest's hub stored the message in the
// memory store.
func BenchmarkSend(b *testing.B) {
	p := newPKI(b)
	h := newRealHub(b, p)
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
