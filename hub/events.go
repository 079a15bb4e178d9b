package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// DefaultConsumerGroup always exists and cannot be deleted.
const DefaultConsumerGroup = "$Default"

// MaxConsumerGroups is the most consumer groups a hub has, $Default included.
const MaxConsumerGroups = 20

// Errors of the built-in events endpoint.
var (
	// ErrConsumerGroupNotFound is returned for a consumer group that does not exist.
	ErrConsumerGroupNotFound = &hubkit.Error{Code: 404002, Name: "ConsumerGroupNotFound"}
	// ErrConsumerGroupExists is returned when creating a consumer group that exists.
	ErrConsumerGroupExists = &hubkit.Error{Code: 409002, Name: "ConsumerGroupAlreadyExists"}
)

const groupPrefix = "hub/consumergroups/"

// groupRecord is what the hub stores per consumer group. Gen makes the
// cursor names of a re-created group differ from those of the deleted one,
// since a store cannot delete cursors.
type groupRecord struct {
	Name    string    `json:"name"`
	Gen     uint64    `json:"gen"`
	Created time.Time `json:"created"`
}

func (g groupRecord) cursor() string { return "cg/" + g.Name + "/" + strconv.FormatUint(g.Gen, 16) }

// An Event is a message read from the built-in events endpoint.
type Event struct {
	// Partition is the partition the event was read from.
	Partition int
	// Offset is the event's offset: opaque to consumers, increasing
	// within the partition. The hub uses the decimal sequence number.
	Offset string
	// SequenceNumber is the event's number in its partition, from 0.
	SequenceNumber uint64
	// EnqueuedTime is when the hub stored the event.
	EnqueuedTime time.Time
	// Message is the event: body, system and application properties.
	Message hubkit.Message
}

// An EventPosition says where Receive starts reading a partition. Build
// one with [Earliest], [Latest], [AtSequence], [AtOffset],
// [AtEnqueuedTime] or [FromCheckpoint]; the zero value is Earliest.
type EventPosition struct {
	kind      posKind
	seq       uint64
	offset    string
	t         time.Time
	inclusive bool
}

type posKind uint8

const (
	posEarliest posKind = iota
	posLatest
	posSequence
	posOffset
	posTime
	posCheckpoint
)

// Earliest starts at the oldest retained event.
func Earliest() EventPosition { return EventPosition{kind: posEarliest} }

// Latest starts after the newest event: Receive returns only events
// enqueued after the call began.
func Latest() EventPosition { return EventPosition{kind: posLatest} }

// AtSequence starts at the event with sequence number n when inclusive,
// else at the one after it.
func AtSequence(n uint64, inclusive bool) EventPosition {
	return EventPosition{kind: posSequence, seq: n, inclusive: inclusive}
}

// AtOffset starts at the event with the given offset when inclusive, else
// at the one after it. As in Event Hubs, "-1" means Earliest and
// "@latest" means Latest.
func AtOffset(offset string, inclusive bool) EventPosition {
	return EventPosition{kind: posOffset, offset: offset, inclusive: inclusive}
}

// AtEnqueuedTime starts at the first event enqueued at or after t.
func AtEnqueuedTime(t time.Time) EventPosition { return EventPosition{kind: posTime, t: t} }

// FromCheckpoint starts where the consumer group's checkpoint of the
// partition says, or at Earliest when it has none.
func FromCheckpoint() EventPosition { return EventPosition{kind: posCheckpoint} }

// resolve returns the sequence number pos designates.
func (h *Hub) resolve(ctx context.Context, g groupRecord, p int, pos EventPosition) (uint64, error) {
	switch pos.kind {
	case posEarliest:
		first, _, err := h.q.Bounds(ctx, EventsStream, p)
		return first, err
	case posLatest:
		_, next, err := h.q.Bounds(ctx, EventsStream, p)
		return next, err
	case posSequence:
		if pos.inclusive {
			return pos.seq, nil
		}
		return pos.seq + 1, nil
	case posOffset:
		switch pos.offset {
		case "-1":
			return h.resolve(ctx, g, p, Earliest())
		case "@latest":
			return h.resolve(ctx, g, p, Latest())
		}
		n, err := strconv.ParseUint(pos.offset, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: offset %q is not one this hub gave out", hubkit.ErrArgumentInvalid, pos.offset)
		}
		return h.resolve(ctx, g, p, AtSequence(n, pos.inclusive))
	case posTime:
		return h.q.SeekTime(ctx, EventsStream, p, pos.t)
	case posCheckpoint:
		n, err := h.q.Cursor(ctx, g.cursor(), EventsStream, p)
		if errors.Is(err, queue.ErrNotFound) {
			return h.resolve(ctx, g, p, Earliest())
		}
		return n, err
	}
	return 0, fmt.Errorf("%w: unknown event position", hubkit.ErrArgumentInvalid)
}

// Receive reads up to max events (at least 1) of one partition of the
// built-in events endpoint for a consumer group, starting at from. When
// no event exists there yet, it waits until one is enqueued, ctx ends
// (it then returns an error wrapping ctx.Err()) or the hub closes. To read
// on, pass AtSequence(last.SequenceNumber, false). Receive does not move
// the group's checkpoint; call Checkpoint for that.
func (h *Hub) Receive(ctx context.Context, group string, partition int, from EventPosition, max int) ([]Event, error) {
	if err := h.running(); err != nil {
		return nil, err
	}
	if max < 1 {
		max = 1
	}
	g, err := h.consumerGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := h.checkPartition(partition); err != nil {
		return nil, err
	}
	ctx, cancel := h.bound(ctx)
	defer cancel()
	seq, err := h.resolve(ctx, g, partition, from)
	if err != nil {
		return nil, h.closedErr(fmt.Errorf("hub: receive from partition %d: %w", partition, err))
	}
	recs, err := h.q.Read(ctx, EventsStream, partition, seq, max, nil)
	if err != nil {
		return nil, h.closedErr(fmt.Errorf("hub: receive from partition %d: %w", partition, err))
	}
	events := make([]Event, len(recs))
	for i, r := range recs {
		events[i] = Event{
			Partition:      partition,
			Offset:         strconv.FormatUint(r.Sequence, 10),
			SequenceNumber: r.Sequence,
			EnqueuedTime:   r.EnqueuedTime,
			Message:        r.Message,
		}
	}
	return events, nil
}

// Checkpoint durably records that the consumer group processed the
// partition's events up to and including sequence number seq: reading
// FromCheckpoint starts after it. A checkpoint never moves backwards: a
// lower seq than the stored one is ignored.
func (h *Hub) Checkpoint(ctx context.Context, group string, partition int, seq uint64) error {
	if err := h.running(); err != nil {
		return err
	}
	g, err := h.consumerGroup(ctx, group)
	if err != nil {
		return err
	}
	if err := h.checkPartition(partition); err != nil {
		return err
	}
	if err := h.q.Commit(ctx, g.cursor(), EventsStream, partition, seq+1); err != nil {
		return h.closedErr(fmt.Errorf("hub: checkpoint %s partition %d: %w", group, partition, err))
	}
	return nil
}

// CheckpointOf returns the sequence number the consumer group reads next
// from the partition by its checkpoint, and false when it has none.
func (h *Hub) CheckpointOf(ctx context.Context, group string, partition int) (uint64, bool, error) {
	if err := h.running(); err != nil {
		return 0, false, err
	}
	g, err := h.consumerGroup(ctx, group)
	if err != nil {
		return 0, false, err
	}
	if err := h.checkPartition(partition); err != nil {
		return 0, false, err
	}
	n, err := h.q.Cursor(ctx, g.cursor(), EventsStream, partition)
	if errors.Is(err, queue.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, h.closedErr(fmt.Errorf("hub: read checkpoint: %w", err))
	}
	return n, true, nil
}

// Partitions returns the number of partitions of the built-in events endpoint.
func (h *Hub) Partitions() int { return h.cfg.Partitions }

func (h *Hub) checkPartition(p int) error {
	if p < 0 || p >= h.cfg.Partitions {
		return fmt.Errorf("%w: partition %d does not exist; the hub has %d", hubkit.ErrArgumentInvalid, p, h.cfg.Partitions)
	}
	return nil
}

// consumerGroup returns the record of a consumer group. Records read once
// are kept in h.groups, so that a Receive does not wait for a store read.
func (h *Hub) consumerGroup(ctx context.Context, name string) (groupRecord, error) {
	if g, ok := h.groups.Load(name); ok {
		return g.(groupRecord), nil
	}
	var g groupRecord
	b, err := h.q.Get(ctx, groupPrefix+name)
	if errors.Is(err, queue.ErrNotFound) {
		return g, fmt.Errorf("hub: consumer group %q: %w", name, ErrConsumerGroupNotFound)
	}
	if err != nil {
		return g, h.closedErr(fmt.Errorf("hub: read consumer group %q: %w", name, err))
	}
	if err := json.Unmarshal(b, &g); err != nil {
		return g, fmt.Errorf("hub: decode consumer group %q: %w", name, err)
	}
	h.groups.Store(name, g)
	return g, nil
}

// ConsumerGroups returns the names of the consumer groups, in name order.
func (h *Hub) ConsumerGroups(ctx context.Context) ([]string, error) {
	if err := h.running(); err != nil {
		return nil, err
	}
	pairs, err := h.q.List(ctx, groupPrefix, "", MaxConsumerGroups+1)
	if err != nil {
		return nil, h.closedErr(fmt.Errorf("hub: list consumer groups: %w", err))
	}
	names := make([]string, len(pairs))
	for i, p := range pairs {
		names[i] = strings.TrimPrefix(p.Key, groupPrefix)
	}
	return names, nil
}

// CreateConsumerGroup creates a consumer group: a name of 1 to 50 ASCII
// letters, digits, '-', '.' and '_', at most MaxConsumerGroups in all. Its
// readers start without checkpoints.
func (h *Hub) CreateConsumerGroup(ctx context.Context, name string) error {
	if err := h.running(); err != nil {
		return err
	}
	if !consumerGroupName.MatchString(name) {
		return fmt.Errorf("%w: consumer group name %q: use 1 to 50 ASCII letters, digits, '-', '.' and '_'", hubkit.ErrArgumentInvalid, name)
	}
	h.groupsMu.Lock()
	defer h.groupsMu.Unlock()
	return h.createGroupLocked(ctx, name)
}

func (h *Hub) createGroupLocked(ctx context.Context, name string) error {
	names, err := h.ConsumerGroups(ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == name {
			return fmt.Errorf("hub: consumer group %q: %w", name, ErrConsumerGroupExists)
		}
	}
	if len(names) >= MaxConsumerGroups {
		return fmt.Errorf("%w: the hub already has %d consumer groups, the limit", hubkit.ErrArgumentInvalid, MaxConsumerGroups)
	}
	g := groupRecord{Name: name, Gen: randUint64(), Created: h.cfg.Clock.Now().UTC()}
	b, _ := json.Marshal(g)
	if err := h.q.Write(ctx, queue.KVOp{Key: groupPrefix + name, Value: b}); err != nil {
		return h.closedErr(fmt.Errorf("hub: create consumer group %q: %w", name, err))
	}
	h.groups.Store(name, g) // replaces whatever an earlier group of that name left
	return nil
}

// DeleteConsumerGroup deletes a consumer group and forgets its
// checkpoints. $Default cannot be deleted.
func (h *Hub) DeleteConsumerGroup(ctx context.Context, name string) error {
	if err := h.running(); err != nil {
		return err
	}
	if name == DefaultConsumerGroup {
		return fmt.Errorf("%w: the consumer group %s cannot be deleted", hubkit.ErrArgumentInvalid, name)
	}
	h.groupsMu.Lock()
	defer h.groupsMu.Unlock()
	if _, err := h.consumerGroup(ctx, name); err != nil {
		return err
	}
	if err := h.q.Write(ctx, queue.KVOp{Key: groupPrefix + name, Delete: true}); err != nil {
		return h.closedErr(fmt.Errorf("hub: delete consumer group %q: %w", name, err))
	}
	h.groups.Delete(name)
	return nil
}

// ensureDefaultGroup creates $Default on a new store.
func (h *Hub) ensureDefaultGroup(ctx context.Context) error {
	h.groupsMu.Lock()
	defer h.groupsMu.Unlock()
	_, err := h.consumerGroup(ctx, DefaultConsumerGroup)
	if errors.Is(err, ErrConsumerGroupNotFound) {
		return h.createGroupLocked(ctx, DefaultConsumerGroup)
	}
	return err
}
