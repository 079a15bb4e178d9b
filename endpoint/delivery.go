package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// A Clock tells the delivery engine the time and wakes it after a delay.
// Tests give the engine a fake one so that an hour of retries takes
// milliseconds (see endpointtest.Clock).
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DeliveryConfig configures a [Delivery]. The zero value of every optional
// field picks the default written next to it.
type DeliveryConfig struct {
	// Name is the endpoint's name, used in logs, errors and Health. Required.
	Name string
	// Endpoint is where the messages go. Required. The Delivery does not
	// close it: its owner does, after closing the Delivery.
	Endpoint Endpoint
	// Streams is the store the messages are read from. Required.
	Streams queue.Streams
	// Stream is the stream holding the endpoint's messages. Empty means Name.
	Stream string
	// Partitions is the number of partitions of Stream, all of which are
	// read. Required, at least 1.
	Partitions int
	// Cursor is the name of the durable cursor recording what the endpoint
	// accepted. Empty means "endpoint/" + Name.
	Cursor string

	// MaxBatch is the most messages one Send carries. Zero means 100.
	MaxBatch int
	// MaxBatchBytes is the most bytes (as hubkit.Message.Size counts them)
	// one Send carries; a message larger than this still goes alone. Zero
	// means 1 MiB.
	MaxBatchBytes int
	// Linger is how long the engine waits for more messages before sending
	// a batch that is not full. Zero means it sends what it has at once.
	Linger time.Duration

	// MinBackoff is the first wait after a failed send. Zero means 1 s.
	MinBackoff time.Duration
	// MaxBackoff is the longest wait between retries. Zero means 60 s.
	// Waits double from MinBackoff up to MaxBackoff, with up to ±1 s of
	// jitter so that endpoints failing together do not retry in step.
	MaxBackoff time.Duration
	// RetryPeriod is how long an endpoint may fail without a success
	// before it is dead. Zero means 1 hour, IoT Hub's value.
	RetryPeriod time.Duration
	// ReviveInterval is the wait between attempts once the endpoint is
	// dead. Zero means 30 s.
	ReviveInterval time.Duration
	// Retention is how long an undelivered message is kept, from its
	// enqueued time: an older one is dropped and counted instead of sent
	// (as DropDeadEndpoint when the endpoint is dead, else DropExpired).
	// Zero means RetryPeriod; negative means forever.
	Retention time.Duration
	// SendTimeout bounds one Send call. Zero means 60 s.
	SendTimeout time.Duration

	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger
	// Clock drives backoff, linger, retention and health times. Nil means
	// the system clock.
	Clock Clock
}

func (c *DeliveryConfig) fill() error {
	var problems []error
	if c.Name == "" {
		problems = append(problems, errors.New("Name is empty"))
	}
	if c.Endpoint == nil {
		problems = append(problems, errors.New("Endpoint is nil"))
	}
	if c.Streams == nil {
		problems = append(problems, errors.New("Streams is nil"))
	}
	if c.Partitions < 1 {
		problems = append(problems, fmt.Errorf("Partitions is %d, want at least 1", c.Partitions))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxBatch", int64(c.MaxBatch)}, {"MaxBatchBytes", int64(c.MaxBatchBytes)},
		{"Linger", int64(c.Linger)}, {"MinBackoff", int64(c.MinBackoff)},
		{"MaxBackoff", int64(c.MaxBackoff)}, {"RetryPeriod", int64(c.RetryPeriod)},
		{"ReviveInterval", int64(c.ReviveInterval)}, {"SendTimeout", int64(c.SendTimeout)},
	} {
		if f.v < 0 {
			problems = append(problems, fmt.Errorf("%s is negative", f.name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("endpoint: invalid delivery config: %w", errors.Join(problems...))
	}
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	if c.Stream == "" {
		c.Stream = c.Name
	}
	if c.Cursor == "" {
		c.Cursor = "endpoint/" + c.Name
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 100
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 1 << 20
	}
	def(&c.MinBackoff, time.Second)
	def(&c.MaxBackoff, time.Minute)
	def(&c.RetryPeriod, time.Hour)
	def(&c.ReviveInterval, 30*time.Second)
	def(&c.Retention, c.RetryPeriod)
	def(&c.SendTimeout, time.Minute)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	return nil
}

// HealthStatus is an endpoint's health, with IoT Hub's names.
type HealthStatus string

// The health states of an endpoint.
const (
	// Unknown: no delivery was attempted yet.
	Unknown HealthStatus = "unknown"
	// Healthy: the endpoint accepts messages as expected.
	Healthy HealthStatus = "healthy"
	// Degraded: the endpoint recovered from failures and the engine is
	// delivering the backlog; healthy again once it has caught up.
	Degraded HealthStatus = "degraded"
	// Unhealthy: sends fail; the engine retries with backoff.
	Unhealthy HealthStatus = "unhealthy"
	// Dead: sends failed for the whole retry period; the engine retries
	// only every ReviveInterval and drops messages older than Retention.
	Dead HealthStatus = "dead"
)

// Health is an endpoint's health as IoT Hub's health API reports it;
// the JSON field names are IoT Hub's. Zero times mean "never".
type Health struct {
	EndpointID                    string       `json:"endpointId"`
	Status                        HealthStatus `json:"healthStatus"`
	LastKnownError                string       `json:"lastKnownError,omitempty"`
	LastKnownErrorTime            time.Time    `json:"lastKnownErrorTime"`
	LastSuccessfulSendAttemptTime time.Time    `json:"lastSuccessfulSendAttemptTime"`
	LastSendAttemptTime           time.Time    `json:"lastSendAttemptTime"`
}

// DropReason says why a message was dropped instead of delivered.
type DropReason int

// Why messages are dropped.
const (
	// DropDeadEndpoint: the message outlived Retention while the endpoint was dead.
	DropDeadEndpoint DropReason = iota
	// DropExpired: the message outlived Retention while the endpoint was not dead
	// (for example, the hub was stopped for longer).
	DropExpired
	// DropTooLarge: the endpoint refused it as too large (a non-retryable
	// error wrapping hubkit.ErrMessageTooLarge).
	DropTooLarge
	// DropInvalid: the endpoint refused it with any other non-retryable error.
	DropInvalid
	// DropRetention: the store's retention (queue.Retention of the
	// endpoint's stream) removed it before it was delivered.
	DropRetention
	numDropReasons
)

var dropNames = [...]string{"deadEndpoint", "expired", "tooLarge", "invalid", "retention"}

// String returns the reason's name as logged: deadEndpoint, expired,
// tooLarge, invalid or retention.
func (r DropReason) String() string {
	if r >= 0 && r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", int(r))
}

// Metrics are counters of one [Delivery] since it was made.
type Metrics struct {
	// Delivered counts messages the endpoint accepted.
	Delivered uint64
	// Sends counts Send calls; Failures those that failed with a retryable error.
	Sends, Failures uint64
	// Dropped counts dropped messages by reason, indexed by DropReason.
	Dropped [numDropReasons]uint64
}

// A Delivery moves one endpoint's messages from its stream to the
// endpoint: it reads every partition from the endpoint's durable cursor,
// sends batches, and moves the cursor durably only after the endpoint
// accepted them, so delivery is at-least-once and in order per partition.
// Failed sends are retried with exponential backoff; health and metrics
// record how it goes. Each endpoint has its own Delivery, so one slow or
// dead endpoint never delays another.
//
// A Delivery is safe for concurrent use: the hub calls Run from a goroutine
// it owns and Close, Stop, Health, Metrics and Wake from any goroutine.
type Delivery struct {
	cfg   DeliveryConfig
	log   *slog.Logger
	clock Clock
	wake  chan struct{}

	stop     chan struct{} // closed by Stop
	stopOnce sync.Once

	delivered, sends, failures atomic.Uint64
	dropped                    [numDropReasons]atomic.Uint64

	mu      sync.Mutex // guards the fields below
	health  Health
	closed  bool
	running bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run returns
}

// NewDelivery checks cfg and returns a Delivery that runs nothing until
// Run. It reports every problem of cfg at once.
func NewDelivery(cfg DeliveryConfig) (*Delivery, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Delivery{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "endpoint", "endpoint", cfg.Name),
		clock:  cfg.Clock,
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		health: Health{EndpointID: cfg.Name, Status: Unknown},
	}, nil
}

// Run delivers until ctx ends, Close is called or Stop is, then returns
// nil once its goroutines have stopped. When ctx ends or Close is called,
// a Send in flight has its ctx cancelled, and what the endpoint had
// accepted is still committed (waiting at most 5 s for the store), so that
// a restart does not send it again; after Stop the Send in flight finishes
// first. It returns an error when the store fails (reading, or committing
// the cursor), after recording it in Health as unhealthy with
// LastKnownError, and hubkit.ErrClosed when called after Close. Run may be
// called again after it returned, and resumes from the durable cursor,
// but only once at a time.
func (d *Delivery) Run(ctx context.Context) error {
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return fmt.Errorf("endpoint %s: %w", d.cfg.Name, hubkit.ErrClosed)
	case d.running:
		d.mu.Unlock()
		return fmt.Errorf("endpoint %s: Run called twice", d.cfg.Name)
	}
	ctx, cancel := context.WithCancel(ctx)
	d.running, d.cancel, d.done = true, cancel, make(chan struct{})
	done := d.done
	d.mu.Unlock()
	defer func() {
		cancel()
		d.mu.Lock()
		d.running = false
		d.mu.Unlock()
		close(done)
	}()

	err := d.run(ctx)
	if ctx.Err() != nil || errors.Is(err, errStopped) {
		return nil
	}
	if err != nil {
		// The loop that would move health on is gone: record why here,
		// so that the endpoint does not look healthy while it delivers
		// nothing.
		d.setError(err)
		d.mu.Lock()
		if d.health.Status != Dead {
			d.health.Status = Unhealthy
		}
		d.mu.Unlock()
	}
	return err
}

// errStopped ends the loop after Stop, so that its errgroup stops the readers.
var errStopped = errors.New("endpoint: delivery stopped")

// Stop asks Run to return once the batch being delivered is done: no new
// batch starts, a Send in flight finishes (within SendTimeout) and what the
// endpoint accepted is committed, while a backoff or linger wait ends at
// once; records read but not sent stay in the store for the next Run. Stop
// does not wait: Run's return tells when it is done. A Run called after
// Stop returns nil at once. Close, or Run's ctx ending, still cancels the
// Send in flight, which bounds a graceful stop. Stop is idempotent and safe
// to call from any goroutine.
func (d *Delivery) Stop() { d.stopOnce.Do(func() { close(d.stop) }) }

func (d *Delivery) run(ctx context.Context) error {
	c := &d.cfg
	next := make([]uint64, c.Partitions) // per partition: the sequence number the cursor holds
	for p := range next {
		n, err := c.Streams.Cursor(ctx, c.Cursor, c.Stream, p)
		if err != nil && !errors.Is(err, queue.ErrNotFound) {
			return fmt.Errorf("endpoint %s: read cursor of partition %d: %w", c.Name, p, err)
		}
		next[p] = n
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "delivery started", slog.String("cursor", c.Cursor), slog.Int("partitions", c.Partitions))
	g, ctx := errgroup.WithContext(ctx)
	records := make(chan queue.Record, c.MaxBatch)
	for p := range next {
		g.Go(func() error { return d.read(ctx, p, next[p], records) })
	}
	g.Go(func() error {
		l := &loop{d: d, records: records, next: next}
		return l.run(ctx)
	})
	return g.Wait()
}

// read feeds records of partition p, from sequence number from on, into out.
func (d *Delivery) read(ctx context.Context, p int, from uint64, out chan<- queue.Record) error {
	c := &d.cfg
	for {
		// The store's retention may have removed records we had not read
		// yet, and Read skips them silently: count them before reading on.
		first, _, err := c.Streams.Bounds(ctx, c.Stream, p)
		if err != nil {
			return fmt.Errorf("endpoint %s: bounds of partition %d: %w", c.Name, p, err)
		}
		from = d.trimmed(ctx, p, from, first)
		// A nil dst: records go to another goroutine, so none may be reused.
		recs, err := c.Streams.Read(ctx, c.Stream, p, from, c.MaxBatch, nil)
		if err != nil {
			return fmt.Errorf("endpoint %s: read partition %d: %w", c.Name, p, err)
		}
		if len(recs) > 0 { // a trim between Bounds and Read
			from = d.trimmed(ctx, p, from, recs[0].Sequence)
		}
		for _, r := range recs {
			select {
			case out <- r:
				from = r.Sequence + 1
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// trimmed counts and logs the records of partition p from sequence number
// from up to first, which the store's retention removed before they were
// delivered, and returns where reading goes on. Sequence numbers have no
// gaps, so a first record beyond from means exactly that many are gone. The
// cursor is not moved here: it moves past the gap with the next delivered
// record of the partition.
func (d *Delivery) trimmed(ctx context.Context, p int, from, first uint64) uint64 {
	if first <= from {
		return from
	}
	d.dropped[DropRetention].Add(first - from)
	d.log.LogAttrs(ctx, slog.LevelError, "messages dropped", slog.String("reason", DropRetention.String()),
		slog.Int("partition", p), slog.Uint64("count", first-from), slog.Uint64("first_sequence", from))
	return first
}

// Close stops Run, waits for it to return, and makes later calls of Run
// return hubkit.ErrClosed. It is idempotent and does not close the Endpoint.
func (d *Delivery) Close() error {
	d.mu.Lock()
	d.closed = true
	running, cancel, done := d.running, d.cancel, d.done
	d.mu.Unlock()
	if running {
		cancel()
		<-done
	}
	return nil
}

// Wake ends the current backoff wait at once, so that the next attempt
// happens now instead of after up to MaxBackoff, or ReviveInterval once
// the endpoint is dead. The Delivery cannot see a sink come back by itself
// (an Endpoint reports only the outcome of Send), so the endpoint's owner
// calls Wake when it learns so some other way: after fixing the
// endpoint's configuration or credentials, after a routing update that
// names the endpoint (IoT Hub probes dead endpoints again on a
// configuration update), or when an outside health check sees the sink
// answer again. A Wake while no wait is in progress ends the next wait.
// Wake is safe to call from any goroutine, at any time, and never blocks.
func (d *Delivery) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Retention returns how long the delivery keeps an undelivered message:
// DeliveryConfig.Retention with its default filled in; negative means
// forever. A store trimming the stream sooner drops messages the delivery
// would still send (counted as DropRetention).
func (d *Delivery) Retention() time.Duration { return d.cfg.Retention }

// Health returns the endpoint's current health.
func (d *Delivery) Health() Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.health
}

// Metrics returns the current counters.
func (d *Delivery) Metrics() Metrics {
	m := Metrics{Delivered: d.delivered.Load(), Sends: d.sends.Load(), Failures: d.failures.Load()}
	for i := range m.Dropped {
		m.Dropped[i] = d.dropped[i].Load()
	}
	return m
}

// commitTimeout bounds the commit of an accepted batch once Close was
// called, and so how long Close can wait for it.
const commitTimeout = 5 * time.Second

// loop is the state of the goroutine that batches and sends. Only that
// goroutine touches it.
type loop struct {
	d       *Delivery
	records <-chan queue.Record
	next    []uint64       // per partition: the sequence number last committed
	carry   *queue.Record  // read but did not fit in the last batch
	pending []queue.Record // the batch being delivered; pending[0] goes first
	msgs    []*hubkit.Message

	failures    int       // consecutive failed sends
	failedSince time.Time // first failure of the current run of failures
}

func (l *loop) run(ctx context.Context) error {
	d := l.d
	for {
		select {
		case <-d.stop:
			return errStopped
		default:
		}
		if len(l.pending) == 0 {
			if err := l.collect(ctx); err != nil {
				return err
			}
		}
		if err := l.expire(ctx); err != nil {
			return err
		}
		if len(l.pending) == 0 {
			continue
		}
		l.msgs = l.msgs[:0]
		for i := range l.pending {
			l.msgs = append(l.msgs, &l.pending[i].Message)
		}
		n, err := d.send(ctx, l.msgs)
		if n > 0 {
			// Commit what the endpoint accepted even when we are stopping,
			// so that a restart does not send it again.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
			err := l.commit(cctx, l.pending[:n])
			cancel()
			if err != nil {
				return err
			}
			d.delivered.Add(uint64(n))
			l.pending = l.pending[n:]
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n > 0 {
			if err := l.succeeded(ctx); err != nil {
				return err
			}
		}
		switch {
		case err == nil && n > 0:
		case err == nil:
			l.failed(ctx, Retry(d.cfg.Name, errors.New("endpoint accepted no message")))
			if err := l.backoff(ctx); err != nil {
				return err
			}
		case !IsRetryable(err):
			reason := DropInvalid
			if errors.Is(err, hubkit.ErrMessageTooLarge) {
				reason = DropTooLarge
			}
			d.setError(err)
			if err := l.drop(ctx, 1, reason, err); err != nil {
				return err
			}
		default:
			l.failed(ctx, err)
			if err := l.backoff(ctx); err != nil {
				return err
			}
		}
	}
}

// collect fills pending with at least one record, then with what else
// arrives before it is full or Linger has passed.
func (l *loop) collect(ctx context.Context) error {
	c := &l.d.cfg
	l.pending = l.pending[:0]
	bytes := 0
	add := func(r queue.Record) bool {
		size := r.Message.Size()
		if len(l.pending) > 0 && bytes+size > c.MaxBatchBytes {
			l.carry = &r
			return false
		}
		l.pending = append(l.pending, r)
		bytes += size
		return len(l.pending) < c.MaxBatch
	}
	if l.carry != nil {
		r := *l.carry
		l.carry = nil
		add(r)
	} else {
		select {
		case r := <-l.records:
			add(r)
		case <-l.d.stop:
			return errStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var linger <-chan time.Time
	if c.Linger > 0 {
		linger = l.d.clock.After(c.Linger)
	}
	for len(l.pending) < c.MaxBatch && l.carry == nil {
		if linger == nil {
			select {
			case r := <-l.records:
				if !add(r) {
					return nil
				}
			default:
				return nil
			}
			continue
		}
		select {
		case r := <-l.records:
			if !add(r) {
				return nil
			}
		case <-linger:
			return nil
		case <-l.d.stop:
			return errStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// expire drops, per partition, the leading pending records older than Retention.
func (l *loop) expire(ctx context.Context) error {
	d := l.d
	if d.cfg.Retention < 0 {
		return nil
	}
	limit := d.clock.Now().Add(-d.cfg.Retention)
	kept := l.pending[:0]
	var dropped []queue.Record
	keeping := map[int]bool{}
	for _, r := range l.pending {
		if !keeping[r.Partition] && r.EnqueuedTime.Before(limit) {
			dropped = append(dropped, r)
			continue
		}
		keeping[r.Partition] = true
		kept = append(kept, r)
	}
	if len(dropped) == 0 {
		return nil
	}
	// dropped shares no memory with kept: kept only overwrites elements
	// already copied out.
	reason := DropExpired
	if d.Health().Status == Dead {
		reason = DropDeadEndpoint
	}
	if err := l.commit(ctx, dropped); err != nil {
		return err
	}
	l.pending = kept
	d.dropped[reason].Add(uint64(len(dropped)))
	d.log.LogAttrs(ctx, slog.LevelError, "messages dropped", slog.String("reason", reason.String()),
		slog.Int("count", len(dropped)), slog.Duration("retention", d.cfg.Retention))
	return nil
}

// drop drops the first n pending records.
func (l *loop) drop(ctx context.Context, n int, reason DropReason, cause error) error {
	if err := l.commit(ctx, l.pending[:n]); err != nil {
		return err
	}
	r := l.pending[0]
	l.pending = l.pending[n:]
	l.d.dropped[reason].Add(uint64(n))
	l.d.log.LogAttrs(ctx, slog.LevelError, "message dropped", slog.String("reason", reason.String()),
		slog.Int("partition", r.Partition), slog.Uint64("offset", r.Offset), slog.String("device_id", r.Message.System.ConnectionDeviceID),
		slog.Any("err", cause))
	return nil
}

// commit durably moves the cursor of each partition past recs, which must
// be, per partition, the first of the pending records.
func (l *loop) commit(ctx context.Context, recs []queue.Record) error {
	c := &l.d.cfg
	touched := map[int]uint64{}
	for _, r := range recs {
		touched[r.Partition] = max(touched[r.Partition], r.Sequence+1)
	}
	for p, next := range touched {
		if next <= l.next[p] {
			continue
		}
		if err := c.Streams.Commit(ctx, c.Cursor, c.Stream, p, next); err != nil {
			return fmt.Errorf("endpoint %s: commit cursor of partition %d: %w", c.Name, p, err)
		}
		l.next[p] = next
	}
	return nil
}

// send makes one Send call bounded by SendTimeout.
func (d *Delivery) send(ctx context.Context, batch []*hubkit.Message) (int, error) {
	now := d.clock.Now()
	d.mu.Lock()
	d.health.LastSendAttemptTime = now
	d.mu.Unlock()
	d.sends.Add(1)
	sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	n, err := d.cfg.Endpoint.Send(sctx, batch)
	return max(0, min(n, len(batch))), err
}

func (d *Delivery) setError(err error) {
	d.mu.Lock()
	d.health.LastKnownError, d.health.LastKnownErrorTime = err.Error(), d.clock.Now()
	d.mu.Unlock()
}

// succeeded records an accepted send and moves health towards healthy:
// unknown goes to healthy, unhealthy and dead to degraded, and degraded to
// healthy once every partition is delivered up to its end.
func (l *loop) succeeded(ctx context.Context) error {
	d := l.d
	l.failures = 0
	d.mu.Lock()
	d.health.LastSuccessfulSendAttemptTime = d.health.LastSendAttemptTime
	old := d.health.Status
	d.mu.Unlock()
	status := old
	switch old {
	case Unknown:
		status = Healthy
	case Unhealthy, Dead:
		status = Degraded
		d.setStatus(ctx, status, nil)
		fallthrough
	case Degraded:
		caughtUp, err := l.caughtUp(ctx)
		if err != nil {
			return err
		}
		if caughtUp {
			status = Healthy
		}
	}
	if status != d.Health().Status {
		d.setStatus(ctx, status, nil)
	}
	return nil
}

func (l *loop) caughtUp(ctx context.Context) (bool, error) {
	c := &l.d.cfg
	if len(l.pending) > 0 || l.carry != nil || len(l.records) > 0 {
		return false, nil
	}
	for p := range l.next {
		_, end, err := c.Streams.Bounds(ctx, c.Stream, p)
		if err != nil {
			return false, fmt.Errorf("endpoint %s: bounds of partition %d: %w", c.Name, p, err)
		}
		if end > l.next[p] {
			return false, nil
		}
	}
	return true, nil
}

// failed records a failed send: unhealthy, and dead once failures have
// lasted RetryPeriod.
func (l *loop) failed(ctx context.Context, err error) {
	d := l.d
	d.failures.Add(1)
	d.setError(err)
	now := d.clock.Now()
	if l.failures == 0 {
		l.failedSince = now
	}
	l.failures++
	status := Unhealthy
	if now.Sub(l.failedSince) >= d.cfg.RetryPeriod {
		status = Dead
	}
	if d.Health().Status != status {
		d.setStatus(ctx, status, err)
	} else {
		d.log.LogAttrs(ctx, slog.LevelDebug, "send failed", slog.Int("attempt", l.failures), slog.Any("err", err))
	}
}

func (d *Delivery) setStatus(ctx context.Context, s HealthStatus, err error) {
	d.mu.Lock()
	d.health.Status = s
	d.mu.Unlock()
	level := slog.LevelInfo
	switch s {
	case Unhealthy, Degraded:
		level = slog.LevelWarn
	case Dead:
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("health", string(s))}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
	}
	d.log.LogAttrs(ctx, level, "endpoint health changed", attrs...)
}

// backoff waits before the next attempt: exponentially longer while
// unhealthy, ReviveInterval once dead; Wake ends the wait early.
func (l *loop) backoff(ctx context.Context) error {
	d := l.d
	wait := d.cfg.ReviveInterval
	if d.Health().Status != Dead {
		wait = d.cfg.MaxBackoff
		if l.failures < 31 {
			wait = min(wait, d.cfg.MinBackoff<<(l.failures-1))
		}
		wait += rand.N(2*time.Second) - time.Second
		wait = max(wait, d.cfg.MinBackoff/2)
	}
	select {
	case <-d.clock.After(wait):
	case <-d.wake:
	case <-d.stop:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
