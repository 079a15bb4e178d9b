package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/hub/service"
)

// Mount the REST API and call it with a token of the iothubowner policy.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "hubkit-service-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	h, err := hub.New(hub.Config{HostName: "myhub.example.com", Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := h.Start(context.Background()); err != nil {
		fmt.Println(err, h.Close())
		return
	}
	defer h.Close()

	srv := httptest.NewServer(service.New(h, service.Options{}))
	defer srv.Close()

	owner, _ := h.Policies().Get("iothubowner")
	token, err := auth.NewSAS("myhub.example.com", owner.PrimaryKey, "iothubowner", time.Now().Add(time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	req, _ := http.NewRequest("GET", srv.URL+"/messages/events/consumerGroups", nil)
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 ["$Default"]
}
