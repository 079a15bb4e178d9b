package groupcommit

import (
	"context"
	"fmt"
	"sync"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// Options configure a [Committer]. Zero fields take the defaults.
type Options struct {
	// MaxEntries bounds the entries of one write. Zero means 1024.
	MaxEntries int
	// Backlog is how many submissions may wait before Submit blocks.
	// Zero means 4096.
	Backlog int
	// MaxInFlight bounds the writes handed to a [queue.AsyncAppender] and
	// not yet durable, so that a slow disk holds back Submit instead of
	// growing memory. Zero means 8.
	MaxInFlight int
	// OnError, when set, is called once per failed write with its number
	// of entries and error, from the goroutine that completes the write;
	// what it returns is what that write's callbacks get.
	OnError func(n int, err error) error
}

// A Committer appends what is submitted to a queue.Streams, many
// submissions per write. Run it in a goroutine of its owner.
type Committer struct {
	q     queue.Streams
	async queue.AsyncAppender // nil: the store has no such role
	opts  Options

	mu      sync.RWMutex // guards sending on pending and closing it
	stopped bool
	pending chan request
	drained chan struct{} // closed when Run returns
}

type request struct {
	entries []queue.Entry
	done    func(error) // may be nil
}

// New returns a Committer over q; it uses q's AppendAsync when q is a
// [queue.AsyncAppender].
func New(q queue.Streams, opts Options) *Committer {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 1024
	}
	if opts.Backlog <= 0 {
		opts.Backlog = 4096
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 8
	}
	c := &Committer{q: q, opts: opts, pending: make(chan request, opts.Backlog), drained: make(chan struct{})}
	c.async, _ = q.(queue.AsyncAppender)
	return c
}

// Submit queues entries for the next write. done, when not nil, is called
// exactly once: with nil once the entries are durable, or with the error
// that kept them from being stored. Calls to done come in Submit order (for
// submissions from one goroutine), from the committer's or the store's
// goroutine, and must not block. Submit waits only when the backlog is
// full, until ctx ends or Run returns. After Stop, or once Run has
// returned, it calls done(hubkit.ErrClosed); a submission that races with
// Run's return may be left pending, and [Committer.Fail] ends it.
// Submissions without entries are done in their turn too.
func (c *Committer) Submit(ctx context.Context, entries []queue.Entry, done func(error)) {
	r := request{entries, done}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.stopped {
		r.finish(hubkit.ErrClosed)
		return
	}
	select {
	case <-c.drained: // checked first: a free backlog slot must not win
		r.finish(hubkit.ErrClosed)
		return
	default:
	}
	select {
	case c.pending <- r:
	case <-ctx.Done():
		r.finish(fmt.Errorf("groupcommit: submit: %w", ctx.Err()))
	case <-c.drained: // Run is gone: nobody will take it
		r.finish(hubkit.ErrClosed)
	}
}

// Stop makes Submit refuse new work; Run writes what was submitted before
// and returns. Stop is idempotent.
func (c *Committer) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.stopped = true
		close(c.pending)
	}
}

// Drained is closed when Run has returned.
func (c *Committer) Drained() <-chan struct{} { return c.drained }

// Fail calls the callbacks of whatever Run left unwritten with err. Call it
// after Stop, once Run has returned.
func (c *Committer) Fail(err error) {
	for r := range c.pending {
		r.finish(err)
	}
}

// Run is the committer: it takes everything pending, up to MaxEntries, and
// appends it in one write. With an AsyncAppender it hands each write over
// and goes straight back to gathering the next while the store syncs, so
// that a message waits for one sync rather than for the one in progress
// and then its own. Run returns when Stop was called and everything
// submitted before is done, or when ctx ends (then the writes in flight
// fail with ctx's error and the rest waits for Fail); in both cases only
// once every write it handed over is done.
func (c *Committer) Run(ctx context.Context) error {
	defer close(c.drained)
	slots := make(chan struct{}, c.opts.MaxInFlight) // writes handed over and not yet done
	defer func() {
		for range cap(slots) {
			slots <- struct{}{}
		}
	}()
	var entries []queue.Entry
	for {
		var batch []request // not reused: an asynchronous append's callback keeps it
		entries = entries[:0]
		select {
		case r, ok := <-c.pending:
			if !ok {
				return nil
			}
			batch = append(batch, r)
			entries = append(entries, r.entries...)
		case <-ctx.Done():
			return nil
		}
	gather:
		for len(entries) < c.opts.MaxEntries {
			select {
			case r, ok := <-c.pending:
				if !ok {
					break gather
				}
				batch = append(batch, r)
				entries = append(entries, r.entries...)
			default:
				break gather
			}
		}
		n := len(entries)
		if c.async != nil {
			// A write without entries goes through the store too, so that
			// its callbacks keep their place after those of earlier writes.
			slots <- struct{}{}
			c.async.AppendAsync(ctx, entries, func(_ []queue.Position, err error) {
				c.finish(batch, n, err)
				<-slots
			})
			continue
		}
		var err error
		if n > 0 {
			_, err = c.q.Append(ctx, entries)
		}
		c.finish(batch, n, err)
	}
}

// finish calls the callbacks of a write of n entries that returned err.
func (c *Committer) finish(batch []request, n int, err error) {
	if err != nil && c.opts.OnError != nil {
		err = c.opts.OnError(n, err)
	}
	for _, r := range batch {
		r.finish(err)
	}
}

func (r request) finish(err error) {
	if r.done != nil {
		r.done(err)
	}
}
