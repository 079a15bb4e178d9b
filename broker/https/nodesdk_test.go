package https_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/nodesdk"
)

// nodeEvent is one line of internal/nodesdk/http_device.js.
type nodeEvent struct {
	Event     string `json:"event"`
	Index     int    `json:"index"`
	Action    string `json:"action"`
	Result    string `json:"result"`
	Error     string `json:"error"`
	MessageID string `json:"messageId"`
	Message   struct {
		Data       string            `json:"data"`
		MessageID  string            `json:"messageId"`
		To         string            `json:"to"`
		LockToken  string            `json:"lockToken"`
		Properties map[string]string `json:"properties"`
	} `json:"message"`
}

// runNodeDevice runs http_device.js with plan against the broker at addr and
// returns the events it printed.
func runNodeDevice(t *testing.T, p *testPKI, addr string, plan map[string]any) []nodeEvent {
	t.Helper()
	dir := nodesdk.Ensure(t)
	_, port, _ := net.SplitHostPort(addr)
	plan["port"] = port
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "http_device.js"), string(b))
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "NODE_EXTRA_CA_CERTS="+p.caFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	var events []nodeEvent
	sc := bufio.NewScanner(bytes.NewReader(outb))
	for sc.Scan() {
		var e nodeEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			events = append(events, e)
		}
	}
	if err != nil {
		t.Fatalf("node: %v\nstdout:\n%s\nstderr:\n%s", err, outb, stderr.Bytes())
	}
	for _, e := range events {
		if e.Event == "error" {
			t.Errorf("device reported an error: %s", e.Error)
		}
	}
	return events
}

// sendResults returns, per send of a plan, "sent" or the SDK's error class.
func sendResults(events []nodeEvent) []string {
	var r []string
	for _, e := range events {
		switch e.Event {
		case "sent":
			r = append(r, "sent")
		case "sendError":
			r = append(r, e.Result)
		}
	}
	return r
}

func TestNodeSDK(t *testing.T) {
	p := newPKI(t)
	h := newRealHub(t, p)
	b, _ := startBroker(t, p, h)
	for _, id := range []string{"c1", "r1", "a1"} {
		h.enqueue(t, "dev-1", hubkit.Message{Body: []byte("to " + id), System: hubkit.SystemProperties{MessageID: id},
			Properties: hubkit.Properties{{Name: "color", Value: "red"}}})
	}
	events := runNodeDevice(t, p, b.Addr().String(), map[string]any{
		"connectionString": "HostName=localhost;DeviceId=dev-1;SharedAccessKey=" + key1,
		"send": []map[string]any{
			{"data": `{"t":21}`, "messageId": "d1", "properties": map[string]string{"temperatureAlert": "true"}},
			{"data": "second", "messageId": "d2"},
		},
		"batch":  []map[string]any{{"data": "b0", "properties": map[string]string{"k": "v0"}}, {"data": "b1"}},
		"settle": map[string][]string{"c1": {"complete"}, "r1": {"reject"}, "a1": {"abandon", "complete"}},
	})

	if got := sendResults(events); !slices.Equal(got, []string{"sent", "sent"}) {
		t.Errorf("sends: %q", got)
	}
	// Telemetry: two sends and a batch of two, in order, with properties.
	msgs := h.stored(t, 4)
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Body))
	}
	if want := []string{`{"t":21}`, "second", "b0", "b1"}; !slices.Equal(got, want) {
		t.Fatalf("hub got bodies %q, want %q", got, want)
	}
	if v, ok := msgs[0].Properties.Get("temperatureAlert"); !ok || v != "true" || msgs[0].System.MessageID != "d1" {
		t.Errorf("first message: id %q properties %+v", msgs[0].System.MessageID, msgs[0].Properties)
	}
	if !strings.EqualFold(msgs[0].System.To, "/devices/dev-1/messages/events") {
		t.Errorf("iothub-to = %q", msgs[0].System.To)
	}
	if v, _ := msgs[2].Properties.Get("k"); v != "v0" {
		t.Errorf("batch message properties %+v, want k=v0", msgs[2].Properties)
	}

	// C2D: what the SDK saw and how the hub saw it settled.
	var seen []string
	for _, e := range events {
		switch e.Event {
		case "message":
			seen = append(seen, e.Message.MessageID+":"+e.Action)
			if e.Message.Data != "to "+e.Message.MessageID || e.Message.Properties["iothub-app-color"] != "red" || e.Message.LockToken == "" {
				t.Errorf("SDK message %+v", e.Message)
			}
		case "settled":
			want := map[string]string{"complete": "MessageCompleted", "reject": "MessageRejected", "abandon": "MessageAbandoned"}[e.Action]
			if e.Result != want {
				t.Errorf("%s of %s: result %q, want %q", e.Action, e.MessageID, e.Result, want)
			}
		}
	}
	if want := []string{"c1:complete", "r1:reject", "a1:abandon", "a1:complete"}; !slices.Equal(seen, want) {
		t.Errorf("SDK received %q, want %q", seen, want)
	}
	if got, want := h.outcomes(t, 3), []string{"Success:c1", "Rejected:r1", "Success:a1"}; !slices.Equal(got, want) {
		t.Errorf("outcomes %q, want %q", got, want)
	}
}

// TestNodeSDKErrors checks that the SDK reads our error answers as the
// errors IoT Hub's answers give it.
func TestNodeSDKErrors(t *testing.T) {
	p := newPKI(t)
	h := newRealHub(t, p)
	b, _ := startBroker(t, p, h)
	connStr := func(id, key string) string { return "HostName=localhost;DeviceId=" + id + ";SharedAccessKey=" + key }
	tests := []struct {
		name, connStr string
		send          []map[string]any
		want          []string
	}{
		{"wrong key", connStr("dev-1", key2), []map[string]any{{"data": "x"}}, []string{"UnauthorizedError"}},
		{"disabled device", connStr(disabled, key1), []map[string]any{{"data": "x"}}, []string{"IotHubQuotaExceededError"}}, // the SDK's name for every 403
		{"unknown device", connStr(unknown, key1), []map[string]any{{"data": "x"}}, []string{"DeviceNotFoundError"}},
		{"bad messages", connStr("dev-1", key1), []map[string]any{
			{"size": hubkit.MaxD2CSize + 1},
			{"data": "x", "properties": map[string]string{"k": "a b"}},
			{"data": "ok"},
		}, []string{"MessageTooLargeError", "ArgumentError", "sent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := runNodeDevice(t, p, b.Addr().String(), map[string]any{"connectionString": tt.connStr, "send": tt.send})
			if got := sendResults(events); !slices.Equal(got, tt.want) {
				t.Errorf("sends: %q, want %q", got, tt.want)
			}
		})
	}
	if ms := h.stored(t, 1); string(ms[0].Body) != "ok" {
		t.Errorf("stored %q, want only ok", ms[0].Body)
	}
}
