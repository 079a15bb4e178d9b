package hub

import "github.com/hubkit/hubkit"

// A Router picks the endpoint streams a message goes to: telemetry
// (MessageSource Telemetry) and device events alike. The hub calls Route
// from the goroutine of the Ingest call or device event, so
// implementations are safe for concurrent use; Route must not keep or
// change m. It returns each endpoint name at most once; nil drops the
// message, as IoT Hub drops a message no route matches.
type Router interface {
	Route(m *hubkit.Message) []string
}

// RouterFunc adapts a function to a Router.
type RouterFunc func(m *hubkit.Message) []string

// Route calls f(m).
func (f RouterFunc) Route(m *hubkit.Message) []string { return f(m) }
