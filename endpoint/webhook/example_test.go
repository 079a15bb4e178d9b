package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint/webhook"
)

func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Header.Get("Authorization"))
		fmt.Println(string(body))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	ep, err := webhook.New(webhook.Options{URL: srv.URL, Header: http.Header{"Authorization": {"Bearer secret"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ep.Close()
	msg := &hubkit.Message{
		Body: []byte(`{"t":21.5}`),
		System: hubkit.SystemProperties{ContentType: "application/json", ContentEncoding: "utf-8",
			ConnectionDeviceID: "dev-1", EnqueuedTime: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
	}
	n, err := ep.Send(context.Background(), []*hubkit.Message{msg})
	fmt.Println(n, err)
	// Output:
	// Bearer secret
	// {"EnqueuedTimeUtc":"2026-03-01T12:00:00.0000000Z","Properties":{},"SystemProperties":{"connectionDeviceId":"dev-1","contentEncoding":"utf-8","contentType":"application/json","enqueuedTime":"2026-03-01T12:00:00.0000000Z"},"Body":{"t":21.5}}
	// 1 <nil>
}
