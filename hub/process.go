package hub

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/hubkit/hubkit"
)

// ProcessOptions tunes [Hub.Process]. The zero value reads every partition
// from its checkpoint, or from the oldest event when it has none, in
// batches of up to 100, and checkpoints each batch once it is handled.
type ProcessOptions struct {
	// Start is where a partition that has no checkpoint in the consumer
	// group starts. The zero value is [Earliest], so that a new group sees
	// every retained event; Event Hubs' processor starts at Latest instead,
	// which Start: [Latest]() gives. [FromCheckpoint] here means Earliest.
	Start EventPosition
	// MaxBatch is the most events one handle call gets. Zero means 100.
	MaxBatch int
	// NoCheckpoint leaves the checkpoints alone: Process still starts from
	// a partition's checkpoint when it has one, but never moves it, so a
	// handler may call [Hub.Checkpoint] itself, e.g. every few batches.
	NoCheckpoint bool
}

// Process reads every partition of the built-in events endpoint as the
// consumer group group, as an Event Hubs processor does, and hands the
// events to handle until ctx ends or something fails.
//
// It runs one goroutine per partition and joins them all before it
// returns. Each starts where the group's checkpoint of its partition says
// ([FromCheckpoint]), or at opts.Start when there is none, and calls
// handle with batches of 1 to opts.MaxBatch events of that partition, in
// order, one call after the other; calls for different partitions run
// concurrently, so handle must be safe for concurrent use. handle owns the
// events slice. When handle returns nil, Process checkpoints the batch's
// last event (unless opts.NoCheckpoint) before it reads on; that
// checkpoint is written even when ctx ends meanwhile. A crash or a failed
// handle call therefore loses nothing: the batch being handled, and only
// it, is handed out again the next time the group is processed.
//
// Process returns nil once ctx ends and the running handle calls have
// returned; handle should honour its ctx, which ends then too. Otherwise it
// returns the first error of handle, Receive or Checkpoint (for a closed
// hub, one wrapping [hubkit.ErrClosed]), after cancelling the other
// partitions' reads and waiting for them. A group that does not exist gives
// an error wrapping [ErrConsumerGroupNotFound] at once; a nil handle or a
// negative MaxBatch one wrapping [hubkit.ErrArgumentInvalid].
func (h *Hub) Process(ctx context.Context, group string, opts ProcessOptions, handle func(ctx context.Context, partition int, events []Event) error) error {
	if err := h.running(); err != nil {
		return err
	}
	if handle == nil {
		return fmt.Errorf("%w: Process needs a handle function", hubkit.ErrArgumentInvalid)
	}
	if opts.MaxBatch < 0 {
		return fmt.Errorf("%w: MaxBatch is %d, want 0 (100) or more", hubkit.ErrArgumentInvalid, opts.MaxBatch)
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 100
	}
	if opts.Start.kind == posCheckpoint {
		opts.Start = Earliest()
	}
	if _, err := h.consumerGroup(ctx, group); err != nil {
		if ctx.Err() != nil {
			return nil // ctx ended before the first read
		}
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for p := range h.Partitions() {
		g.Go(func() error {
			err := h.processPartition(gctx, group, p, opts, handle)
			if ctx.Err() != nil {
				return nil // ctx ended: not a failure, whatever it interrupted
			}
			return err
		})
	}
	return g.Wait()
}

// processPartition is the loop of one partition of Process; it returns
// only with an error, ctx's when ctx ends.
func (h *Hub) processPartition(ctx context.Context, group string, p int, opts ProcessOptions, handle func(context.Context, int, []Event) error) error {
	from := opts.Start
	next, ok, err := h.CheckpointOf(ctx, group, p)
	if err != nil {
		return err
	}
	if ok {
		from = AtSequence(next, true)
	}
	for {
		events, err := h.Receive(ctx, group, p, from, opts.MaxBatch)
		if err != nil {
			return err
		}
		if err := handle(ctx, p, events); err != nil {
			return fmt.Errorf("hub: process partition %d: %w", p, err)
		}
		last := events[len(events)-1].SequenceNumber
		if !opts.NoCheckpoint {
			// The batch is handled: record it even if ctx has just ended,
			// so that it is not handed out again.
			if err := h.Checkpoint(context.WithoutCancel(ctx), group, p, last); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		from = AtSequence(last, false)
	}
}
