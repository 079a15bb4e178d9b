package amqp_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/amqp"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// privateBroker starts a RabbitMQ of its own with .ci/rabbitmq.sh, on free
// ports with its state in a temporary directory, so that restarting it
// disturbs no other test. extraEnv ("NAME=value") is passed to the script
// too, e.g. the RMQ_TLS_* variables. It returns the broker's URL and a
// function that runs the script with stop, start or another command.
func privateBroker(t *testing.T, extraEnv ...string) (url, dir string, rmq func(cmd string)) {
	t.Helper()
	brokerURL(t) // the shared broker is up, so RabbitMQ is installed
	script, err := filepath.Abs(filepath.Join("..", "..", ".ci", "rabbitmq.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir, err = os.MkdirTemp("", "hubkit-rmq-")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	env := append(os.Environ(), "RMQ_DIR="+dir, "RMQ_PORT="+strconv.Itoa(port),
		"RMQ_DIST_PORT="+strconv.Itoa(freePort(t)), "RMQ_EPMD_PORT="+strconv.Itoa(freePort(t)),
		"RMQ_NODE=hubkit-restart@localhost", "RMQ_START_TIMEOUT=150")
	env = append(env, extraEnv...)
	rmq = func(cmd string) {
		t.Helper()
		c := exec.Command("bash", script, cmd)
		c.Env = env
		start := time.Now()
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("rabbitmq.sh %s: %v\n%s", cmd, err, out)
		}
		t.Logf("rabbitmq.sh %s: %v: %s", cmd, time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
	}
	rmq("start")
	t.Cleanup(func() {
		rmq("stop")
		os.RemoveAll(dir)
	})
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d", port), dir, rmq
}

// kill9 kills the broker's Erlang VM with SIGKILL and waits for the
// rabbitmq-server script that ran it to exit, so that start runs a new one.
func kill9(t *testing.T, dir string) {
	t.Helper()
	pid := func(name string) int {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	script := pid("server.pid")
	if err := syscall.Kill(pid("beam.pid"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(script, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("rabbitmq-server script still running 30 s after its VM was killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Log("killed the broker with SIGKILL")
}

// TestBrokerRestart stops the broker cleanly, starts it, kills it with
// SIGKILL and starts it again, while the delivery engine feeds it a steady
// stream from a Pebble store: nothing is lost and order per partition holds.
func TestBrokerRestart(t *testing.T) {
	url, dir, rmq := privateBroker(t)
	const address = "/amq/queue/hub-restart" // durable, declared by .ci/rmq-definitions.json
	store, err := pebble.Open(t.TempDir(), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ep := newEndpoint(t, amqp.Options{URL: url, Address: address, DialTimeout: 5 * time.Second})
	d, err := endpoint.NewDelivery(endpoint.DeliveryConfig{Name: "rmq", Endpoint: ep, Streams: store, Partitions: 2,
		MaxBatch: 50, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, SendTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(context.Background()) }()
	t.Cleanup(func() {
		d.Close()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// A producer appends one message per partition every 2 ms until stopped.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	appended := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var entries []queue.Entry
			for p := range 2 {
				id := fmt.Sprintf("p%d-%d", p, i)
				entries = append(entries, queue.Entry{Stream: "rmq", Partition: p, Message: &hubkit.Message{Body: []byte(id), System: hubkit.SystemProperties{MessageID: id}}})
			}
			if _, err := store.Append(context.Background(), entries); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			appended += 2
			mu.Unlock()
		}
	}()
	stopProducer := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopProducer)

	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, outage := range []struct {
		name string
		down func()
	}{
		{"clean stop", func() { rmq("stop") }},
		{"SIGKILL", func() { kill9(t, dir) }},
	} {
		before := d.Metrics().Delivered
		waitFor("200 deliveries before the "+outage.name, 30*time.Second, func() bool { return d.Metrics().Delivered >= before+200 })
		outage.down()
		waitFor("unhealthy after the "+outage.name, 30*time.Second, func() bool { return d.Health().Status == endpoint.Unhealthy })
		rmq("start")
	}
	stopProducer()
	total := appended
	waitFor("every message delivered", 60*time.Second, func() bool { return d.Metrics().Delivered == uint64(total) })
	if h := d.Health(); h.Status != endpoint.Healthy && h.Status != endpoint.Degraded {
		t.Errorf("health after recovery = %+v", h)
	}

	rcv := receive(t, url, address)
	seen := map[string]bool{}
	waitFor("the queue drained", 60*time.Second, func() bool {
		for _, m := range rcv.messages() {
			seen[string(m.GetData())] = true
		}
		return len(seen) == total
	})
	// Order per partition: each message follows its predecessor, or a
	// redelivery restarts at one already seen.
	prev, next := map[string]int{"p0": -1, "p1": -1}, map[string]int{}
	dups := 0
	for _, m := range rcv.messages() {
		p, s, _ := strings.Cut(string(m.GetData()), "-")
		i, _ := strconv.Atoi(s)
		switch {
		case i == prev[p]+1 && i <= next[p]:
			if i == next[p] {
				next[p]++
			} else {
				dups++
			}
		case i <= prev[p]:
			dups++
		default:
			t.Fatalf("partition %s: message %d after %d with %d seen", p, i, prev[p], next[p])
		}
		prev[p] = i
	}
	t.Logf("%d messages appended, %d delivered to the broker, %d duplicates, %d sends, %d failed", total, len(rcv.messages()), dups, d.Metrics().Sends, d.Metrics().Failures)
}
