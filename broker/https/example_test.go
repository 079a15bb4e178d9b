package https_test

import (
	"context"
	"crypto/tls"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/https"
	"github.com/hubkit/hubkit/hub"
)

// A hub whose devices connect over HTTPS on port 443, the only port the
// device SDKs dial. The hub starts and stops the broker.
func Example() {
	cert, err := tls.LoadX509KeyPair("hub.crt", "hub.key")
	if err != nil {
		log.Fatal(err)
	}
	b, err := https.New(https.Options{
		Addr:      ":443",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
	})
	if err != nil {
		log.Fatal(err)
	}
	h, err := hub.New(hub.Config{HostName: "myhub.example.com", Brokers: []broker.Broker{b}})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := h.Start(ctx); err != nil {
		log.Fatal(err)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(sctx); err != nil {
		log.Print(err)
	}
}

// The device API mounted on a server of the program's own, beside its
// other routes.
func ExampleBroker_Handler() {
	var h *hub.Hub // started elsewhere, without the broker in its Config
	b, err := https.New(https.Options{})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/devices/", b.Handler(h))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	srv := &http.Server{
		Addr:    ":443",
		Handler: mux,
		// Ask for client certificates so that X.509 devices can present one.
		TLSConfig: &tls.Config{ClientAuth: tls.RequestClientCert},
	}
	log.Fatal(srv.ListenAndServeTLS("hub.crt", "hub.key"))
}
