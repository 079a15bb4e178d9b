package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/nodesdk"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
)

// TestDevicesAndServiceAcrossRestarts walks a hub through its main paths
// with real devices, restarting it (Shutdown, New, Start on the same
// directory) between every step: telemetry from paho and from the Azure
// IoT Node.js SDK reaches a consumer group with its properties; C2D sent
// while the devices are offline waits in their queues, is delivered when
// they connect, and gives positive feedback that the service reads.
func TestDevicesAndServiceAcrossRestarts(t *testing.T) {
	nodesdk.Ensure(t)
	e := startHub(t)
	ctx := ctxFor(t, 3*time.Minute)
	const pahoID, nodeID, group = "paho-1", "node-1", "e2e"
	if err := createDevices(ctx, e.h, pahoID, nodeID); err != nil {
		t.Fatal(err)
	}
	if err := e.h.CreateConsumerGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	e.restart()

	// Step 1: telemetry from both devices.
	p := e.connectPaho(pahoID, false)
	for i := range 3 {
		bag := fmt.Sprintf("$.mid=paho-%d&$.cid=corr-%d&$.ct=application%%2Fjson&$.ce=utf-8&seq=%d&note=a%%26b%%3Dc%%2Fd", i, i, i)
		p.publish(t, bag, fmt.Appendf(nil, `{"n":%d}`, i))
	}
	p.c.Disconnect(100)
	var sent int
	for _, ev := range e.runNode(ctx, nodesdk.Plan{ConnectionString: e.connectionString(nodeID), Send: []nodesdk.Message{
		{Data: `{"n":0}`, MessageID: "node-0", ContentType: "application/json", ContentEncoding: "utf-8",
			Properties: map[string]string{"seq": "0", "note": "a&b=c/d ü"}},
		{Data: "plain", MessageID: "node-1", Properties: map[string]string{"seq": "1"}},
	}}) {
		if ev.Event == "sent" {
			sent++
		}
	}
	if sent != 2 {
		t.Fatalf("the Node.js device sent %d messages, want 2", sent)
	}
	e.restart()

	// Step 2: the consumer group reads them all, properties included.
	want := map[string][]string{pahoID: {"paho-0", "paho-1", "paho-2"}, nodeID: {"node-0", "node-1"}}
	perPartition := map[int]int{}
	for dev, ids := range want {
		perPartition[e.h.Partition(dev)] += len(ids)
	}
	last := map[int]uint64{}
	got := map[string][]hubkit.Message{}
	for part, n := range perPartition {
		evs := receive(ctx, t, e.h, group, part, n)
		for _, ev := range evs {
			got[ev.Message.System.ConnectionDeviceID] = append(got[ev.Message.System.ConnectionDeviceID], ev.Message)
		}
		last[part] = evs[len(evs)-1].SequenceNumber
		if err := e.h.Checkpoint(ctx, group, part, last[part]); err != nil {
			t.Fatal(err)
		}
	}
	for dev, ids := range want {
		msgs := got[dev]
		if len(msgs) != len(ids) {
			t.Fatalf("%s: got %d events, want %d", dev, len(msgs), len(ids))
		}
		for i, m := range msgs {
			s := m.System
			if s.MessageID != ids[i] || s.ConnectionDeviceID != dev || s.MessageSource != hubkit.SourceTelemetry ||
				s.EnqueuedTime.IsZero() || s.ConnectionAuthGenerationID == "" || !strings.Contains(s.ConnectionAuthMethod, "sas") {
				t.Errorf("%s event %d: system properties %+v", dev, i, s)
			}
			if v, _ := m.Properties.Get("seq"); v != fmt.Sprint(i) {
				t.Errorf("%s event %d: seq = %q", dev, i, v)
			}
		}
	}
	pm := got[pahoID][1]
	if string(pm.Body) != `{"n":1}` || pm.System.CorrelationID != "corr-1" || pm.System.ContentType != "application/json" || pm.System.ContentEncoding != "utf-8" {
		t.Errorf("paho event 1: %+v", pm)
	}
	if v, _ := pm.Properties.Get("note"); v != "a&b=c/d" {
		t.Errorf("paho note = %q", v)
	}
	nm := got[nodeID][0]
	if string(nm.Body) != `{"n":0}` || nm.System.ContentType != "application/json" {
		t.Errorf("node event 0: %+v", nm)
	}
	if v, _ := nm.Properties.Get("note"); v != "a&b=c/d ü" {
		t.Errorf("node note = %q", v)
	}
	e.restart()

	// The checkpoints survived, and nothing is left to read.
	for part, seq := range last {
		next, ok, err := e.h.CheckpointOf(ctx, group, part)
		if err != nil || !ok || next != seq+1 {
			t.Fatalf("partition %d: checkpoint %d, %v, %v; want %d", part, next, ok, err, seq+1)
		}
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		evs, err := e.h.Receive(short, group, part, hub.FromCheckpoint(), 10)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("partition %d after its checkpoint: %d events, %v; want a wait that times out", part, len(evs), err)
		}
	}

	// Step 3: C2D to devices that are offline waits in their queues.
	send := func(dev, id string, ack hubkit.Ack) {
		t.Helper()
		m := &hubkit.Message{Body: []byte("to " + dev), System: hubkit.SystemProperties{MessageID: id, CorrelationID: "c-" + id, Ack: ack}}
		m.Properties.Set("kind", "command")
		if _, err := e.h.SendC2D(ctx, dev, m); err != nil {
			t.Fatalf("SendC2D %s: %v", id, err)
		}
	}
	queued := func(dev string) int {
		t.Helper()
		d, err := e.h.GetDevice(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		return d.CloudToDeviceMessageCount
	}
	send(pahoID, "c2d-paho", hubkit.AckFull)
	send(nodeID, "c2d-node", hubkit.AckPositive)
	e.restart()
	for _, dev := range []string{pahoID, nodeID} {
		if n := queued(dev); n != 1 {
			t.Fatalf("%s holds %d messages after a restart, want 1", dev, n)
		}
	}

	// Step 4: the devices connect and get them; a device that is online
	// gets a new message at once.
	p = e.connectPaho(pahoID, true)
	m := p.next(ctx, t)
	if string(m.Body) != "to paho-1" || m.System.MessageID != "c2d-paho" || m.System.CorrelationID != "c-c2d-paho" ||
		m.System.To != "/devices/paho-1/messages/deviceBound" || m.System.Ack != hubkit.AckFull {
		t.Errorf("paho C2D: %+v", m)
	}
	if v, _ := m.Properties.Get("kind"); v != "command" {
		t.Errorf("paho C2D kind = %q", v)
	}
	poll.Until(t, "the paho C2D message completed", func() bool { return queued(pahoID) == 0 })
	send(pahoID, "c2d-live", hubkit.AckPositive)
	if m := p.next(ctx, t); m.System.MessageID != "c2d-live" {
		t.Errorf("live C2D: %+v", m)
	}
	poll.Until(t, "the live C2D message completed", func() bool { return queued(pahoID) == 0 })
	var nodeGot []nodesdk.Message
	for _, ev := range e.runNode(ctx, nodesdk.Plan{ConnectionString: e.connectionString(nodeID), Receive: 1}) {
		if ev.Event == "message" {
			nodeGot = append(nodeGot, ev.Message)
		}
	}
	if len(nodeGot) != 1 || nodeGot[0].Data != "to node-1" || nodeGot[0].MessageID != "c2d-node" || nodeGot[0].Properties["kind"] != "command" {
		t.Fatalf("the Node.js device received %+v", nodeGot)
	}
	poll.Until(t, "the Node.js C2D message completed", func() bool { return queued(nodeID) == 0 })
	p.c.Disconnect(100)
	e.restart()

	// Step 5: positive feedback for all three, read by the service once.
	success := map[string]string{}
	for len(success) < 3 {
		b, err := e.h.ReceiveFeedback(ctx, false)
		if err != nil {
			t.Fatalf("feedback so far %v: %v", success, err)
		}
		for _, r := range b.Records {
			if r.StatusCode != "Success" || r.Description != "Success" || r.DeviceGenerationID == "" {
				t.Errorf("feedback record %+v", r)
			}
			if _, dup := success[r.OriginalMessageID]; dup {
				t.Errorf("feedback for %s twice", r.OriginalMessageID)
			}
			success[r.OriginalMessageID] = r.DeviceID
		}
		if b.Message.System.ContentType != hub.FeedbackContentType {
			t.Errorf("feedback content type %q", b.Message.System.ContentType)
		}
		if err := e.h.CompleteFeedback(ctx, b.LockToken); err != nil {
			t.Fatal(err)
		}
	}
	if success["c2d-paho"] != pahoID || success["c2d-node"] != nodeID || success["c2d-live"] != pahoID {
		t.Fatalf("feedback %v", success)
	}
	e.restart()
	if b, err := e.h.ReceiveFeedback(ctx, true); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("feedback after completing it all: %+v, %v; want queue.ErrEmpty", b.Records, err)
	}

	// Telemetry is still all there from the start.
	total := 0
	for part := range e.h.Partitions() {
		_, ok := perPartition[part]
		if !ok {
			continue
		}
		evs, err := e.h.Receive(ctx, hub.DefaultConsumerGroup, part, hub.Earliest(), 100)
		if err != nil {
			t.Fatal(err)
		}
		total += len(evs)
	}
	if total != 5 {
		t.Fatalf("%d events from the earliest, want 5", total)
	}
}
