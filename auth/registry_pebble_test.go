package auth_test

import (
	"testing"

	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/queue/pebble"
)

// TestRegistrySurvivesPebbleReopen closes the Pebble store under a registry
// and opens it again from disk: identities, keys, generation ids and etags
// are what they were, and the etag from before still guards an update.
func TestRegistrySurvivesPebbleReopen(t *testing.T) {
	dir := t.TempDir()
	open := func() *pebble.Store {
		s, err := pebble.Open(dir, pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	s := open()
	r := newRegistry(t, &countingKV{KV: s}, nil)
	d, err := r.Create(ctx, auth.Device{DeviceID: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	d.StatusReason = "maintenance"
	if d, err = r.Update(ctx, d, d.ETag); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open()
	t.Cleanup(func() { s.Close() })
	after, err := newRegistry(t, &countingKV{KV: s}, nil).Get(ctx, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	if after.ETag != d.ETag || after.GenerationID != d.GenerationID || after.Authentication != d.Authentication || after.StatusReason != "maintenance" {
		t.Errorf("after reopen:\n%+v\nbefore:\n%+v", after, d)
	}
	r2 := newRegistry(t, &countingKV{KV: s}, nil)
	if _, err := r2.GetModule(ctx, "dev-1", "m1"); err != nil {
		t.Errorf("module after reopen: %v", err)
	}
	if _, err := r2.Update(ctx, after, d.ETag); err != nil {
		t.Errorf("Update with the etag from before the reopen = %v", err)
	}
}
