package service

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/hubkit/hubkit/endpoint"
)

// metrics writes the hub's counters in the Prometheus text format.
func (s *Handler) metrics(w http.ResponseWriter, r *http.Request, _ []string) error {
	m := s.h.Metrics()
	var b strings.Builder
	write := func(name, kind, help string, v int64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, kind, name, v)
	}
	write("hubkit_d2c_messages_total", "counter", "Device-to-cloud messages accepted.", m.D2CIn)
	write("hubkit_routing_dropped_total", "counter", "Telemetry messages no route took.", m.Dropped)
	write("hubkit_c2d_sent_total", "counter", "Cloud-to-device messages queued.", m.C2DSent)
	write("hubkit_c2d_completed_total", "counter", "Cloud-to-device messages completed by devices.", m.C2DCompleted)
	write("hubkit_c2d_rejected_total", "counter", "Cloud-to-device messages rejected by devices.", m.C2DRejected)
	write("hubkit_c2d_abandoned_total", "counter", "Cloud-to-device deliveries abandoned by devices.", m.C2DAbandoned)
	write("hubkit_feedback_records_total", "counter", "Feedback records produced.", m.FeedbackRecords)
	write("hubkit_feedback_messages_total", "counter", "Feedback messages produced.", m.FeedbackMessages)
	write("hubkit_connections", "gauge", "Device and module connections open now.", m.Connections)
	eps := s.h.Endpoints()
	if len(eps) > 0 {
		b.WriteString("# HELP hubkit_endpoint_delivered_total Messages a custom endpoint accepted.\n# TYPE hubkit_endpoint_delivered_total counter\n")
		for _, e := range eps {
			fmt.Fprintf(&b, "hubkit_endpoint_delivered_total{endpoint=%q} %d\n", e.Health.EndpointID, e.Metrics.Delivered)
		}
		b.WriteString("# HELP hubkit_endpoint_dropped_total Messages a custom endpoint dropped, by reason.\n# TYPE hubkit_endpoint_dropped_total counter\n")
		for _, e := range eps {
			// Every reason, zeros too, so that rates work from the first drop.
			for r, n := range e.Metrics.Dropped {
				fmt.Fprintf(&b, "hubkit_endpoint_dropped_total{endpoint=%q,reason=%q} %d\n", e.Health.EndpointID, endpoint.DropReason(r), n)
			}
		}
		b.WriteString("# HELP hubkit_endpoint_health A custom endpoint's health: 1 for its current status.\n# TYPE hubkit_endpoint_health gauge\n")
		for _, e := range eps {
			fmt.Fprintf(&b, "hubkit_endpoint_health{endpoint=%q,status=%q} 1\n", e.Health.EndpointID, e.Health.Status)
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String())) // a failed write means the client went away
	return nil
}
