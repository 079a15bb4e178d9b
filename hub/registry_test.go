package hub_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
)

// recordingBroker records the identities the hub asks it to disconnect.
type recordingBroker struct {
	mu   sync.Mutex
	disc []string // "device/module"
}

func (b *recordingBroker) Start(ctx context.Context, h broker.Hub) error { return nil }
func (b *recordingBroker) Shutdown(ctx context.Context) error            { return nil }
func (b *recordingBroker) Close() error                                  { return nil }
func (b *recordingBroker) Disconnect(deviceID, moduleID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.disc = append(b.disc, deviceID+"/"+moduleID)
}

func (b *recordingBroker) disconnects() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.disc)
}

func TestRegistryChangesDisconnect(t *testing.T) {
	b := &recordingBroker{}
	r := newRig(t, rigOptions{config: func(c *hub.Config) { c.Brokers = []broker.Broker{b} }})
	reg := r.Registry().(*auth.Registry)
	ctx := ctxFor(t, 10*time.Second)
	var want []string
	step := func(name string, wantDisc string, change func() error) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if wantDisc != "" {
			want = append(want, wantDisc)
		}
	}
	d := createDevice(t, r, "d")
	step("create module", "", func() error {
		_, err := reg.CreateModule(ctx, auth.Module{DeviceID: "d", ModuleID: "m"})
		return err
	})
	step("update nothing that matters", "", func() error {
		d.StatusReason = "just a note"
		var err error
		d, err = reg.Update(ctx, d, "*")
		return err
	})
	step("disable", "d/", func() error {
		d.Status = auth.StatusDisabled
		var err error
		d, err = reg.Update(ctx, d, "*")
		return err
	})
	step("enable with new keys", "d/", func() error {
		d.Status = auth.StatusEnabled
		d.Authentication.SymmetricKey.PrimaryKey = "bmV3IHByaW1hcnkga2V5IG9mIGQ="
		var err error
		d, err = reg.Update(ctx, d, "*")
		return err
	})
	step("delete module", "d/m", func() error { return reg.DeleteModule(ctx, "d", "m", "*") })
	step("delete device through the hub", "d/", func() error { return r.DeleteDevice(ctx, "d", "*") })
	poll.Until(t, "the disconnects", func() bool { return len(b.disconnects()) >= len(want) })
	if got := b.disconnects(); !slices.Equal(got, want) {
		t.Fatalf("disconnects %q, want %q", got, want)
	}
}
