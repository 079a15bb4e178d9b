package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

// The crash child is this test binary run again with childDirEnv set: it
// runs a hub on Pebble in that directory instead of the tests.
const (
	childDirEnv = "HUBKIT_E2E_CRASH_DIR"
	childRunEnv = "HUBKIT_E2E_CRASH_RUN"
)

const (
	crashDevices = 8
	crashKills   = 22
	liveGroup    = "live"   // read and checkpointed by the child under load
	verifyGroup  = "verify" // read by the parent between runs
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(runChild(dir, os.Getenv(childRunEnv)))
	}
	os.Exit(m.Run())
}

func crashDeviceID(i int) string { return fmt.Sprintf("crash-%d", i) }

// runChild is the crash child: a hub with Pebble in dir and plain MQTT on
// a port it prints, which sends C2D messages with ack=full to every device
// and reads the built-in endpoint with the consumer group liveGroup. It
// prints, one line each, after the fact is durable:
//
//	addr <host:port>          the hub is ready
//	c2d <device> <message id> SendC2D accepted the message
//	ckpt <partition> <next>   Checkpoint returned: liveGroup reads next from there
//
// It runs until it is killed.
func runChild(dir, run string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) int { log.Error("crash child", "err", err); return 2 }
	ctx := context.Background()
	mq, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0", HostName: hostName, Logger: log})
	if err != nil {
		return fail(err)
	}
	h, err := hub.New(hubConfig(dir, log, mq))
	if err != nil {
		return fail(err)
	}
	if err := h.Start(ctx); err != nil {
		return fail(err)
	}
	var ids []string
	for i := range crashDevices {
		ids = append(ids, crashDeviceID(i))
	}
	if err := createDevices(ctx, h, ids...); err != nil {
		return fail(err)
	}
	if err := h.CreateConsumerGroup(ctx, liveGroup); err != nil && !errors.Is(err, hub.ErrConsumerGroupExists) {
		return fail(err)
	}
	var mu sync.Mutex // one line per write, whole
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	say("addr %s", mq.TCPAddr())
	go func() { // runs until the process is killed
		// The handler checkpoints itself, to print the line once the
		// checkpoint is durable.
		err := h.Process(ctx, liveGroup, hub.ProcessOptions{MaxBatch: 256, NoCheckpoint: true}, func(ctx context.Context, p int, evs []hub.Event) error {
			last := evs[len(evs)-1].SequenceNumber
			if err := h.Checkpoint(ctx, liveGroup, p, last); err != nil {
				return err
			}
			say("ckpt %d %d", p, last+1)
			return nil
		})
		log.Error("process", "err", err)
	}()
	// Several senders, so that sends race with each other, with
	// completions and with the kill.
	const senders = 4
	for w := range senders {
		go func() {
			tick := time.NewTicker(2 * time.Millisecond)
			for i := w; ; i += senders {
				<-tick.C
				dev := ids[i%len(ids)]
				id := fmt.Sprintf("c2d-r%s-%d", run, i)
				m := &hubkit.Message{Body: []byte(id), System: hubkit.SystemProperties{MessageID: id, Ack: hubkit.AckFull}}
				if _, err := h.SendC2D(ctx, dev, m); err == nil {
					say("c2d %s %s", dev, id)
				} else if !errors.Is(err, hubkit.ErrDeviceMaximumQueueDepthExceeded) {
					log.Warn("send C2D", "device_id", dev, "err", err)
				}
			}
		}()
	}
	select {} // until the process is killed
}

// crashState is what the parent knows, across all runs of the child.
type crashState struct {
	mu       sync.Mutex
	next     map[string]int    // device -> next D2C number
	acked    map[string]bool   // D2C message ids PUBACKed by a child
	stored   map[string]bool   // D2C message ids found in the built-in endpoint
	accepted map[string]string // C2D message id -> device, accepted by SendC2D
	received map[string]bool   // C2D message ids devices received
	reported map[int]uint64    // partition -> highest liveGroup checkpoint the child reported
	seen     map[string]uint64 // "group/partition" -> checkpoint seen by the last verification
	success  map[string]map[time.Time]int
	runAcks  int // acks in the current run
}

func (s *crashState) lock() func() { s.mu.Lock(); return s.mu.Unlock }

// TestCrashUnderLoad kills a hub process with SIGKILL at random moments,
// crashKills times, while paho devices publish telemetry and receive C2D
// messages, and after each kill reopens its store and checks that every
// PUBACKed message is in the built-in endpoint, that no consumer group
// checkpoint went back, and that no C2D message was completed twice. At
// the end every C2D message SendC2D accepted was received by its device or
// is still queued.
func TestCrashUnderLoad(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	st := &crashState{
		next: map[string]int{}, acked: map[string]bool{}, stored: map[string]bool{},
		accepted: map[string]string{}, received: map[string]bool{}, reported: map[int]uint64{},
		seen: map[string]uint64{}, success: map[string]map[time.Time]int{},
	}
	for run := range crashKills {
		runChildOnce(t, exe, dir, run, st, rng)
		verifyStore(t, dir, st, false)
		if t.Failed() {
			t.Fatalf("run %d failed", run)
		}
	}
	// The last verification flushed its feedback on Shutdown: read it too,
	// then check the C2D messages.
	verifyStore(t, dir, st, true)
	unlock := st.lock()
	defer unlock()
	t.Logf("%d kills: %d D2C messages PUBACKed, %d stored; %d C2D accepted, %d received, %d completed",
		crashKills, len(st.acked), len(st.stored), len(st.accepted), len(st.received), len(st.success))
	if len(st.acked) < crashKills*20 || len(st.accepted) == 0 || len(st.success) == 0 {
		t.Fatalf("too little load to prove anything: %d acked, %d C2D accepted, %d completed", len(st.acked), len(st.accepted), len(st.success))
	}
}

// runChildOnce starts the child, drives load from the devices, kills the
// child with SIGKILL at a random moment and waits until it and the devices
// are done.
func runChildOnce(t *testing.T, exe, dir string, run int, st *crashState, rng *rand.Rand) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childRunEnv+"="+strconv.Itoa(run))
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	defer kill()
	addr := make(chan string, 1)
	lines := make(chan error, 1)
	go func() { lines <- readChild(out, st, addr) }()

	var devices sync.WaitGroup
	stop := make(chan struct{})
	select {
	case a := <-addr:
		unlock := st.lock()
		st.runAcks = 0
		unlock()
		for i := range crashDevices {
			devices.Add(1)
			go func() {
				defer devices.Done()
				deviceSession(a, crashDeviceID(i), st, stop)
			}()
		}
	case err := <-lines:
		t.Fatalf("run %d: the child ended before it was ready: %v", run, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("run %d: the child is not ready after 60 s", run)
	}
	// Kill at a random moment: mostly after a random amount of acknowledged
	// telemetry, sometimes as soon as the hub is ready.
	if rng.IntN(5) != 0 {
		want := 1 + rng.IntN(800)
		poll.Until(t, fmt.Sprintf("%d acknowledged messages", want), func() bool {
			unlock := st.lock()
			defer unlock()
			return st.runAcks >= want
		})
	}
	kill()
	close(stop)
	if err := <-lines; err != nil {
		t.Errorf("run %d: reading the child: %v", run, err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("run %d: the child ended with %v, want killed", run, err)
	}
	devices.Wait()
}

// readChild records what the child prints until its stdout closes.
func readChild(r io.Reader, st *crashState, addr chan<- string) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "addr":
			addr <- f[1]
		case len(f) == 3 && f[0] == "c2d":
			unlock := st.lock()
			st.accepted[f[2]] = f[1]
			unlock()
		case len(f) == 3 && f[0] == "ckpt":
			p, err1 := strconv.Atoi(f[1])
			next, err2 := strconv.ParseUint(f[2], 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			unlock := st.lock()
			st.reported[p] = max(st.reported[p], next)
			unlock()
		default:
			return fmt.Errorf("unexpected line %q", sc.Text())
		}
	}
	return sc.Err()
}

// deviceSession connects a device to the child, subscribes to its C2D
// messages and publishes numbered telemetry, 8 messages in flight, until
// the connection is lost or stop is closed. It records every PUBACKed
// message and every C2D message received.
func deviceSession(addr, id string, st *crashState, stop <-chan struct{}) {
	token, err := deviceToken(id)
	if err != nil {
		return
	}
	c := paho.NewClient(pahoOptions("tcp://"+addr, id, token, nil))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return // the child was killed first
	}
	defer c.Disconnect(0)
	sub := c.Subscribe(c2dTopic(id)+"#", 1, func(_ paho.Client, m paho.Message) {
		msg, err := decodeC2D(id, m.Topic(), m.Payload())
		if err != nil {
			return // left unrecorded: the final check then reports it lost
		}
		unlock := st.lock()
		st.received[msg.System.MessageID] = true
		unlock()
	})
	if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
		return
	}
	type pending struct {
		tok paho.Token
		id  string
	}
	var window []pending
	settle := func(p pending) bool {
		select {
		case <-p.tok.Done():
		case <-time.After(10 * time.Second):
			return false
		}
		if p.tok.Error() != nil {
			return false
		}
		unlock := st.lock()
		st.acked[p.id] = true
		st.runAcks++
		unlock()
		return true
	}
	defer func() {
		for _, p := range window {
			settle(p) // PUBACKs already on their way still count
		}
	}()
	body := make([]byte, 64)
	for {
		select {
		case <-stop:
			return
		default:
		}
		unlock := st.lock()
		mid := fmt.Sprintf("%s-%d", id, st.next[id])
		st.next[id]++
		unlock()
		window = append(window, pending{c.Publish(d2cTopic(id)+"$.mid="+mid, 1, false, body), mid})
		if len(window) == 8 {
			ok := settle(window[0])
			window = window[1:]
			if !ok {
				return
			}
		}
	}
}

// verifyStore opens the child's store in this process with a hub on it,
// reads what the built-in endpoint gained since the last verification and
// the feedback, and checks the guarantees. With final it also checks that
// every accepted C2D message was received or is still queued.
func verifyStore(t *testing.T, dir string, st *crashState, final bool) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	q, err := pebble.Open(dir, pebble.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatalf("reopen the store after a kill: %v", err)
	}
	defer q.Close()
	cfg := hubConfig("", discardLogger())
	cfg.Queue = q
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(errors.Join(err, h.Close()))
	}
	defer func() {
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	for _, g := range []string{liveGroup, verifyGroup} {
		if err := h.CreateConsumerGroup(ctx, g); err != nil && !errors.Is(err, hub.ErrConsumerGroupExists) {
			t.Fatal(err)
		}
	}
	unlock := st.lock()
	defer unlock()

	// Checkpoints never go back: not below what the child was told was
	// durable, nor below what the last verification saw.
	for p := range h.Partitions() {
		for _, g := range []string{liveGroup, verifyGroup} {
			next, _, err := h.CheckpointOf(ctx, g, p)
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%s/%d", g, p)
			if next < st.seen[key] || g == liveGroup && next < st.reported[p] {
				t.Errorf("checkpoint of %s went back to %d: the last seen was %d, the child was told %d", key, next, st.seen[key], st.reported[p])
			}
			st.seen[key] = next
		}
		_, end, err := q.Bounds(ctx, hub.EventsStream, p)
		if err != nil {
			t.Fatal(err)
		}
		from := st.seen[verifyGroup+"/"+strconv.Itoa(p)]
		for from < end {
			evs, err := h.Receive(ctx, verifyGroup, p, hub.AtSequence(from, true), 1024)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				st.stored[ev.Message.System.MessageID] = true
			}
			from = evs[len(evs)-1].SequenceNumber + 1
		}
		if from > 0 {
			if err := h.Checkpoint(ctx, verifyGroup, p, from-1); err != nil {
				t.Fatal(err)
			}
			st.seen[verifyGroup+"/"+strconv.Itoa(p)] = from
		}
	}
	var lost []string
	for id := range st.acked {
		if !st.stored[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		t.Errorf("%d PUBACKed messages are not in the built-in endpoint, e.g. %v", len(lost), lost[:min(len(lost), 10)])
	}

	// Feedback: exactly one Success record per completed message, across
	// every kill: the feedback message and the journal cursor past its
	// records are one atomic write, so a record is never sent twice.
	for {
		b, err := h.ReceiveFeedback(ctx, true)
		if errors.Is(err, queue.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Records {
			if r.StatusCode != "Success" {
				t.Errorf("feedback %+v: only Success is possible here", r)
				continue
			}
			times := st.success[r.OriginalMessageID]
			if times == nil {
				times = map[time.Time]int{}
				st.success[r.OriginalMessageID] = times
			}
			times[r.EnqueuedTimeUTC]++
			if n := sumCounts(times); n > 1 {
				t.Errorf("feedback %s for C2D message %s read %d times: %v", r.StatusCode, r.OriginalMessageID, n, times)
			}
			if !st.received[r.OriginalMessageID] {
				t.Errorf("C2D message %s completed but never received", r.OriginalMessageID)
			}
		}
		if err := h.CompleteFeedback(ctx, b.LockToken); err != nil {
			t.Fatal(err)
		}
	}
	if !final {
		return
	}
	queued := map[string]bool{}
	for i := range crashDevices {
		msgs, err := q.Peek(ctx, crashDeviceID(i), 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			queued[m.System.MessageID] = true
		}
	}
	var missing []string
	for id := range st.accepted {
		if !st.received[id] && !queued[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("%d accepted C2D messages were neither received nor queued, e.g. %v", len(missing), missing[:min(len(missing), 10)])
	}
	t.Logf("%d C2D messages still queued", len(queued))
}

// sumCounts returns the sum of the counts in m.
func sumCounts(m map[time.Time]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
