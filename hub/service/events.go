package service

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/hub"
)

func (s *Handler) listGroups(w http.ResponseWriter, r *http.Request, _ []string) error {
	names, err := s.h.ConsumerGroups(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, names)
}

func (s *Handler) createGroup(w http.ResponseWriter, r *http.Request, args []string) error {
	if err := s.h.CreateConsumerGroup(r.Context(), args[0]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Handler) deleteGroup(w http.ResponseWriter, r *http.Request, args []string) error {
	if err := s.h.DeleteConsumerGroup(r.Context(), args[0]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func partition(v string) (int, error) {
	p, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%w: partition %q is not a number", hubkit.ErrArgumentInvalid, v)
	}
	return p, nil
}

// position reads the start position from the query (see the package
// documentation).
func position(r *http.Request) (hub.EventPosition, error) {
	q := r.URL.Query()
	inclusive := q.Get("inclusive") == "true"
	bad := func(what, v string) (hub.EventPosition, error) {
		return hub.EventPosition{}, fmt.Errorf("%w: %s %q", hubkit.ErrArgumentInvalid, what, v)
	}
	switch {
	case q.Has("offset"):
		return hub.AtOffset(q.Get("offset"), inclusive), nil
	case q.Has("sequenceNumber"):
		n, err := strconv.ParseUint(q.Get("sequenceNumber"), 10, 64)
		if err != nil {
			return bad("sequenceNumber", q.Get("sequenceNumber"))
		}
		return hub.AtSequence(n, inclusive), nil
	case q.Has("enqueuedTime"):
		t, err := time.Parse(time.RFC3339Nano, q.Get("enqueuedTime"))
		if err != nil {
			return bad("enqueuedTime", q.Get("enqueuedTime"))
		}
		return hub.AtEnqueuedTime(t), nil
	}
	switch v := q.Get("from"); v {
	case "", "checkpoint":
		return hub.FromCheckpoint(), nil
	case "earliest":
		return hub.Earliest(), nil
	case "latest":
		return hub.Latest(), nil
	default:
		return bad("from", v)
	}
}

// eventJSON is an event as the API answers it.
type eventJSON struct {
	Partition        int               `json:"partition"`
	Offset           string            `json:"offset"`
	SequenceNumber   uint64            `json:"sequenceNumber"`
	EnqueuedTimeUTC  time.Time         `json:"enqueuedTimeUtc"`
	SystemProperties map[string]string `json:"systemProperties"`
	Properties       map[string]string `json:"properties"`
	Body             []byte            `json:"body"`
}

// systemProperties returns the set system properties of m under their AMQP names.
func systemProperties(m *hubkit.Message) map[string]string {
	s := &m.System
	out := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	put("message-id", s.MessageID)
	put("correlation-id", s.CorrelationID)
	put("user-id", s.UserID)
	put("to", s.To)
	put("content-type", s.ContentType)
	put("content-encoding", s.ContentEncoding)
	put("iothub-creation-time-utc", s.CreationTime)
	put("iothub-connection-device-id", s.ConnectionDeviceID)
	put("iothub-connection-module-id", s.ConnectionModuleID)
	put("iothub-connection-auth-generation-id", s.ConnectionAuthGenerationID)
	put("iothub-connection-auth-method", s.ConnectionAuthMethod)
	put("iothub-message-source", s.MessageSource)
	put("dt-dataschema", s.DataSchema)
	put("dt-subject", s.Subject)
	put("iothub-interface-id", s.InterfaceID)
	if !s.ExpiryTime.IsZero() {
		out["absolute-expiry-time"] = s.ExpiryTime.UTC().Format(time.RFC3339Nano)
	}
	if !s.EnqueuedTime.IsZero() {
		out["iothub-enqueuedtime"] = s.EnqueuedTime.UTC().Format(time.RFC3339Nano)
	}
	return out
}

func (s *Handler) receiveEvents(w http.ResponseWriter, r *http.Request, args []string) error {
	p, err := partition(args[1])
	if err != nil {
		return err
	}
	from, err := position(r)
	if err != nil {
		return err
	}
	max := 100
	if v := r.URL.Query().Get("max"); v != "" {
		if max, err = strconv.Atoi(v); err != nil || max < 1 || max > 1000 {
			return fmt.Errorf("%w: max must be 1 to 1000", hubkit.ErrArgumentInvalid)
		}
	}
	ctx, cancel, wait, err := waitContext(r, 5*time.Second)
	if err != nil {
		return err
	}
	defer cancel()
	if wait == 0 {
		return fmt.Errorf("%w: timeout must be positive when reading events", hubkit.ErrArgumentInvalid)
	}
	evs, err := s.h.Receive(ctx, args[0], p, from, max)
	if err != nil && !(ctx.Err() != nil && r.Context().Err() == nil) { // a timeout answers what there is: nothing
		return err
	}
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		props := make(map[string]string, len(e.Message.Properties))
		for _, p := range e.Message.Properties {
			props[p.Name] = p.Value
		}
		out[i] = eventJSON{
			Partition:        e.Partition,
			Offset:           e.Offset,
			SequenceNumber:   e.SequenceNumber,
			EnqueuedTimeUTC:  e.EnqueuedTime.UTC(),
			SystemProperties: systemProperties(&e.Message),
			Properties:       props,
			Body:             e.Message.Body,
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// checkpointJSON is the body of the checkpoint routes.
type checkpointJSON struct {
	SequenceNumber *uint64 `json:"sequenceNumber"`
}

func (s *Handler) getCheckpoint(w http.ResponseWriter, r *http.Request, args []string) error {
	p, err := partition(args[1])
	if err != nil {
		return err
	}
	next, ok, err := s.h.CheckpointOf(r.Context(), args[0], p)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: consumer group %s has no checkpoint for partition %d", errNotFound, args[0], p)
	}
	return writeJSON(w, http.StatusOK, checkpointJSON{SequenceNumber: &next})
}

func (s *Handler) checkpoint(w http.ResponseWriter, r *http.Request, args []string) error {
	p, err := partition(args[1])
	if err != nil {
		return err
	}
	var c checkpointJSON
	if err := readJSON(w, r, 1<<10, &c); err != nil {
		return err
	}
	if c.SequenceNumber == nil {
		return fmt.Errorf("%w: the body needs a sequenceNumber", hubkit.ErrArgumentInvalid)
	}
	if err := s.h.Checkpoint(r.Context(), args[0], p, *c.SequenceNumber); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
