package hub

import (
	"sync/atomic"

	"github.com/hubkit/hubkit/endpoint"
)

// metrics are the hub's counters, read by Metrics.
type metrics struct {
	d2cIn, d2cDropped                 atomic.Int64
	c2dSent, c2dCompleted             atomic.Int64
	c2dRejected, c2dAbandoned         atomic.Int64
	feedbackRecords, feedbackMessages atomic.Int64
	connections                       atomic.Int64
}

// Metrics is a snapshot of the hub's counters since Start.
type Metrics struct {
	// D2CIn counts device-to-cloud messages accepted by Ingest.
	D2CIn int64
	// Dropped counts device-to-cloud messages (telemetry) no route took,
	// as IoT Hub's d2c.telemetry.egress.dropped; device events no route
	// takes are not counted.
	Dropped int64
	// C2DSent counts cloud-to-device messages queued by SendC2D.
	C2DSent int64
	// C2DCompleted, C2DRejected and C2DAbandoned count device settlements.
	C2DCompleted, C2DRejected, C2DAbandoned int64
	// FeedbackRecords and FeedbackMessages count the feedback produced.
	FeedbackRecords, FeedbackMessages int64
	// Connections is the number of device and module connections open now.
	Connections int64
}

// Metrics returns a snapshot of the hub's counters.
func (h *Hub) Metrics() Metrics {
	m := &h.metrics
	return Metrics{
		D2CIn:            m.d2cIn.Load(),
		Dropped:          m.d2cDropped.Load(),
		C2DSent:          m.c2dSent.Load(),
		C2DCompleted:     m.c2dCompleted.Load(),
		C2DRejected:      m.c2dRejected.Load(),
		C2DAbandoned:     m.c2dAbandoned.Load(),
		FeedbackRecords:  m.feedbackRecords.Load(),
		FeedbackMessages: m.feedbackMessages.Load(),
		Connections:      m.connections.Load(),
	}
}

// EndpointStatus is the health and counters of one custom endpoint.
type EndpointStatus struct {
	// Health is the endpoint's health as its delivery loop last recorded
	// it: IoT Hub's status (unknown, healthy, degraded, unhealthy or dead),
	// the last error and the times of the last send attempts.
	Health endpoint.Health
	// Metrics are the endpoint's delivery counters since Start: messages
	// delivered, sends, failed sends and messages dropped, by reason.
	Metrics endpoint.Metrics
}

// WakeEndpoints makes every custom endpoint waiting out a retry backoff,
// or the probe interval of a dead endpoint, try again now. The hub cannot
// see a failing endpoint's target come back by itself; call it when you
// learn so some other way, after fixing an endpoint's configuration or
// credentials, or after replacing routes (IoT Hub probes dead endpoints
// again on a configuration update). It never blocks.
func (h *Hub) WakeEndpoints() {
	for _, d := range h.deliveries {
		d.Wake()
	}
}

// Endpoints returns the status of each custom endpoint, in Config order.
func (h *Hub) Endpoints() []EndpointStatus {
	out := make([]EndpointStatus, len(h.deliveries))
	for i, d := range h.deliveries {
		out[i] = EndpointStatus{Health: d.Health(), Metrics: d.Metrics()}
	}
	return out
}
