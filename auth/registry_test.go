package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

var ctx = context.Background()

func TestRegistryCreateGet(t *testing.T) {
	r := newRegistry(t, newKV(t), nil)
	d, err := r.Create(ctx, auth.Device{DeviceID: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[1-9][0-9]{17}$`).MatchString(d.GenerationID) {
		t.Errorf("generationId %q is not 18 decimal digits", d.GenerationID)
	}
	if _, err := base64.StdEncoding.DecodeString(d.ETag); err != nil || d.ETag == "" {
		t.Errorf("etag %q is not base64: %v", d.ETag, err)
	}
	for _, k := range []string{d.Authentication.SymmetricKey.PrimaryKey, d.Authentication.SymmetricKey.SecondaryKey} {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
			t.Errorf("generated key %q: %d bytes, %v", k, len(b), err)
		}
	}
	if d.Status != auth.StatusEnabled || d.Authentication.Type != auth.AuthSAS || d.ConnectionState != auth.Connected && d.ConnectionState != auth.Disconnected || !d.StatusUpdatedTime.IsZero() {
		t.Errorf("defaults: %+v", d)
	}
	got, err := r.Get(ctx, "dev-1")
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Errorf("Get = %+v, %v\nwant %+v", got, err, d)
	}
	if _, err := r.Create(ctx, auth.Device{DeviceID: "dev-1"}); !errors.Is(err, hubkit.ErrDeviceAlreadyExists) {
		t.Errorf("second Create = %v, want ErrDeviceAlreadyExists", err)
	}
	if _, err := r.Get(ctx, "dev-2"); !errors.Is(err, hubkit.ErrDeviceNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrDeviceNotFound", err)
	}
}

func TestRegistryJSONFieldNames(t *testing.T) {
	r := newRegistry(t, newKV(t), nil)
	d, err := r.Create(ctx, auth.Device{DeviceID: "dev-1", Capabilities: auth.Capabilities{IotEdge: true}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := jsonMarshal(d)
	for _, f := range []string{`"deviceId":"dev-1"`, `"generationId":`, `"etag":`, `"connectionState":"Disconnected"`, `"status":"enabled"`,
		`"statusReason":null`, `"connectionStateUpdatedTime":"0001-01-01T00:00:00Z"`, `"statusUpdatedTime":"0001-01-01T00:00:00Z"`, `"lastActivityTime":`,
		`"cloudToDeviceMessageCount":0`, `"authentication":{"symmetricKey":{"primaryKey":`, `"secondaryKey":`,
		`"x509Thumbprint":{"primaryThumbprint":`, `"type":"sas"`, `"capabilities":{"iotEdge":true}`} {
		if !strings.Contains(string(b), f) {
			t.Errorf("device JSON lacks %s:\n%s", f, b)
		}
	}
	d.StatusReason = "maintenance"
	b, err = jsonMarshal(d)
	var back auth.Device
	if err != nil || !strings.Contains(string(b), `"statusReason":"maintenance"`) || json.Unmarshal(b, &back) != nil || !reflect.DeepEqual(back, d) {
		t.Errorf("device with a statusReason: %s (%v), decoded %+v", b, err, back)
	}
}

func TestRegistryCreateInvalid(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 15))
	long := base64.StdEncoding.EncodeToString(make([]byte, 65))
	sha1 := strings.Repeat("ab", 20)
	for _, tc := range []struct {
		name string
		d    auth.Device
		want string
	}{
		{"empty id", auth.Device{}, "empty"},
		{"slash in id", auth.Device{DeviceID: "a/b"}, "not allowed"},
		{"status", auth.Device{DeviceID: "d", Status: "paused"}, "status"},
		{"reason", auth.Device{DeviceID: "d", StatusReason: strings.Repeat("é", 129)}, "statusReason"},
		{"short key", auth.Device{DeviceID: "d", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: short}}}, "DeviceKeyLengthInvalid"},
		{"long key", auth.Device{DeviceID: "d", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{SecondaryKey: long}}}, "DeviceKeyLengthInvalid"},
		{"key not base64", auth.Device{DeviceID: "d", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: "$$$"}}}, "DeviceKeyLengthInvalid"},
		{"sas with thumbprint", auth.Device{DeviceID: "d", Authentication: auth.Authentication{X509Thumbprint: auth.X509Thumbprint{PrimaryThumbprint: sha1}}}, "no thumbprints"},
		{"selfSigned without thumbprint", auth.Device{DeviceID: "d", Authentication: auth.Authentication{Type: auth.AuthSelfSigned}}, "thumbprint"},
		{"selfSigned bad thumbprint", auth.Device{DeviceID: "d", Authentication: auth.Authentication{Type: auth.AuthSelfSigned, X509Thumbprint: auth.X509Thumbprint{PrimaryThumbprint: "abc"}}}, "40 (SHA-1)"},
		{"selfSigned bad secondary", auth.Device{DeviceID: "d", Authentication: auth.Authentication{Type: auth.AuthSelfSigned, X509Thumbprint: auth.X509Thumbprint{PrimaryThumbprint: sha1, SecondaryThumbprint: sha1 + "zz"}}}, "secondary"},
		{"CA with keys", auth.Device{DeviceID: "d", Authentication: auth.Authentication{Type: auth.AuthCertificateAuthority, SymmetricKey: auth.SymmetricKey{PrimaryKey: deviceKey}}}, "neither keys"},
		{"unknown type", auth.Device{DeviceID: "d", Authentication: auth.Authentication{Type: "password"}}, "authentication type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegistry(t, newKV(t), nil)
			_, err := r.Create(ctx, tc.d)
			if !errors.Is(err, hubkit.ErrArgumentInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Create = %v, want ArgumentInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestRegistryUpdate(t *testing.T) {
	clk := newClock(testNow)
	r, err := auth.NewRegistry(auth.RegistryConfig{KV: newKV(t), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Create(ctx, auth.Device{DeviceID: "dev-1", Status: "Enabled"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetCloudToDeviceMessageCount(ctx, "dev-1", 3); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	upd := d
	upd.Status, upd.StatusReason, upd.CloudToDeviceMessageCount = auth.StatusDisabled, "stolen", 99
	upd.Authentication.SymmetricKey = auth.SymmetricKey{}
	if _, err := r.Update(ctx, upd, "bm9wZQ=="); !errors.Is(err, hubkit.ErrPreconditionFailed) {
		t.Errorf("Update with a stale etag = %v, want ErrPreconditionFailed", err)
	}
	u, err := r.Update(ctx, upd, `"`+d.ETag+`"`)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case u.ETag == d.ETag:
		t.Error("etag did not change")
	case u.GenerationID != d.GenerationID:
		t.Error("generationId changed on update")
	case u.Authentication.SymmetricKey != d.Authentication.SymmetricKey:
		t.Error("empty keys on update did not keep the stored keys")
	case u.CloudToDeviceMessageCount != 3:
		t.Errorf("cloudToDeviceMessageCount = %d, want the hub's 3", u.CloudToDeviceMessageCount)
	case !u.StatusUpdatedTime.Equal(clk.Now()) || u.Status != auth.StatusDisabled || u.StatusReason != "stolen":
		t.Errorf("status not updated: %+v", u)
	}
	u2, err := r.Update(ctx, u, "*")
	if err != nil || u2.ETag == u.ETag || !u2.StatusUpdatedTime.Equal(u.StatusUpdatedTime) {
		t.Errorf("unconditional Update: %+v, %v", u2, err)
	}
	if _, err := r.Update(ctx, auth.Device{DeviceID: "ghost"}, "*"); !errors.Is(err, hubkit.ErrDeviceNotFound) {
		t.Errorf("Update(unknown) = %v", err)
	}
	// Connection state and activity do not churn the etag.
	if err := r.SetConnectionState(ctx, "dev-1", "", true); err != nil {
		t.Fatal(err)
	}
	if err := r.Touch(ctx, "dev-1", "", clk.Now()); err != nil {
		t.Fatal(err)
	}
	g, _ := r.Get(ctx, "dev-1")
	if g.ETag != u2.ETag || g.ConnectionState != auth.Connected || !g.ConnectionStateUpdatedTime.Equal(clk.Now()) || !g.LastActivityTime.Equal(clk.Now()) {
		t.Errorf("after SetConnectionState and Touch: %+v", g)
	}
}

func TestRegistryDeleteAndRecreate(t *testing.T) {
	r := newRegistry(t, newKV(t), nil)
	d, _ := r.Create(ctx, auth.Device{DeviceID: "dev-1"})
	if _, err := r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "dev-1", "bm9wZQ=="); !errors.Is(err, hubkit.ErrPreconditionFailed) {
		t.Errorf("Delete with a stale etag = %v", err)
	}
	if err := r.Delete(ctx, "dev-1", d.ETag); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "dev-1"); !errors.Is(err, hubkit.ErrDeviceNotFound) {
		t.Errorf("Get after Delete = %v", err)
	}
	if err := r.Delete(ctx, "dev-1", "*"); !errors.Is(err, hubkit.ErrDeviceNotFound) {
		t.Errorf("second Delete = %v", err)
	}
	n, err := r.Create(ctx, auth.Device{DeviceID: "dev-1"})
	if err != nil || n.GenerationID == d.GenerationID {
		t.Errorf("re-created device: generationId %q (was %q), %v", n.GenerationID, d.GenerationID, err)
	}
	if _, err := r.GetModule(ctx, "dev-1", "m1"); !errors.Is(err, auth.ErrModuleNotFound) {
		t.Errorf("module of a deleted device survived: %v", err)
	}
}

func TestRegistryModules(t *testing.T) {
	r := newRegistry(t, newKV(t), nil)
	if _, err := r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1"}); !errors.Is(err, hubkit.ErrDeviceNotFound) {
		t.Errorf("CreateModule on a missing device = %v", err)
	}
	r.Create(ctx, auth.Device{DeviceID: "dev-1"})
	m, err := r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1", ManagedBy: "IotEdge"})
	if err != nil || m.GenerationID == "" || m.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Fatalf("CreateModule = %+v, %v", m, err)
	}
	if _, err := r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1"}); !errors.Is(err, auth.ErrModuleAlreadyExists) {
		t.Errorf("duplicate CreateModule = %v", err)
	}
	if _, err := r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "a/b"}); !errors.Is(err, hubkit.ErrArgumentInvalid) {
		t.Errorf("CreateModule with a bad id = %v", err)
	}
	r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m0"})
	ms, err := r.ListModules(ctx, "dev-1")
	if err != nil || len(ms) != 2 || ms[0].ModuleID != "m0" || ms[1].ModuleID != "m1" {
		t.Errorf("ListModules = %+v, %v", ms, err)
	}
	if err := r.DeleteModule(ctx, "dev-1", "m1", m.ETag); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetModule(ctx, "dev-1", "m1"); !errors.Is(err, auth.ErrModuleNotFound) {
		t.Errorf("GetModule after delete = %v", err)
	}
}

func TestRegistryList(t *testing.T) {
	r := newRegistry(t, newKV(t), nil)
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("dev-%02d", i)
		want = append(want, id)
		if _, err := r.Create(ctx, auth.Device{DeviceID: id}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	after := ""
	for {
		page, err := r.List(ctx, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			got = append(got, d.DeviceID)
		}
		if len(page) < 10 {
			break
		}
		after = page[len(page)-1].DeviceID
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paged List = %v\nwant %v", got, want)
	}
	for _, limit := range []int{-1, auth.MaxListLimit + 1} {
		if _, err := r.List(ctx, "", limit); !errors.Is(err, hubkit.ErrArgumentInvalid) {
			t.Errorf("List limit %d = %v, want ArgumentInvalid", limit, err)
		}
	}
}

func TestRegistrySurvivesRestart(t *testing.T) {
	kv := newKV(t)
	r := newRegistry(t, kv, nil)
	d, _ := r.Create(ctx, auth.Device{DeviceID: "dev-1"})
	d.StatusReason = "maintenance"
	d, err := r.Update(ctx, d, d.ETag)
	if err != nil {
		t.Fatal(err)
	}
	r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1"})
	r.Touch(ctx, "dev-1", "", testNow.Add(time.Minute)) // cached only
	if g, _ := r.Get(ctx, "dev-1"); !g.LastActivityTime.Equal(testNow.Add(time.Minute)) {
		t.Errorf("lastActivityTime after Touch = %v, want %v", g.LastActivityTime, testNow.Add(time.Minute))
	}
	r.SetConnectionState(ctx, "dev-1", "", true)          // writes the device, with its activity
	r.Touch(ctx, "dev-1", "", testNow.Add(2*time.Minute)) // cached only, lost on restart
	before, _ := r.Get(ctx, "dev-1")

	r2 := newRegistry(t, kv, nil) // a restart over the same store
	after, err := r2.Get(ctx, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	if after.ETag != d.ETag || after.GenerationID != d.GenerationID || after.Authentication != d.Authentication || after.ConnectionState != auth.Connected {
		t.Errorf("after restart:\n%+v\nbefore:\n%+v", after, before)
	}
	if !after.LastActivityTime.Equal(testNow.Add(time.Minute)) {
		t.Errorf("persisted lastActivityTime = %v, want the Touch before the last write", after.LastActivityTime)
	}
	if _, err := r2.Update(ctx, after, d.ETag); err != nil {
		t.Errorf("Update with the etag from before the restart = %v", err)
	}
	if _, err := r2.GetModule(ctx, "dev-1", "m1"); err != nil {
		t.Errorf("module after restart: %v", err)
	}
}

func TestRegistryOnChange(t *testing.T) {
	var mu sync.Mutex
	var got []auth.Change
	r := newRegistry(t, newKV(t), func(c auth.Change) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	})
	d, _ := r.Create(ctx, auth.Device{DeviceID: "dev-1"})
	r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1"})
	d.Status = auth.StatusDisabled
	d, _ = r.Update(ctx, d, "*")
	d.Authentication.SymmetricKey.PrimaryKey = deviceKey
	r.Update(ctx, d, "*")
	r.SetConnectionState(ctx, "dev-1", "", true) // no change event
	r.Delete(ctx, "dev-1", "*")
	want := []auth.Change{
		{Kind: auth.Created, DeviceID: "dev-1", Enabled: true, CredentialsChanged: true},
		{Kind: auth.Created, DeviceID: "dev-1", ModuleID: "m1", Enabled: true, CredentialsChanged: true},
		{Kind: auth.Updated, DeviceID: "dev-1"},
		{Kind: auth.Updated, DeviceID: "dev-1", CredentialsChanged: true},
		{Kind: auth.Deleted, DeviceID: "dev-1"},
		{Kind: auth.Deleted, DeviceID: "dev-1", ModuleID: "m1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes:\n%+v\nwant\n%+v", got, want)
	}
}

// gateKV blocks Gets until released and records how many ran at once.
type gateKV struct {
	*countingKV
	release          chan struct{}
	running, maxSeen atomic.Int64
}

func (g *gateKV) Get(ctx context.Context, key string) ([]byte, error) {
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for {
		m := g.maxSeen.Load()
		if n <= m || g.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	<-g.release
	return g.countingKV.Get(ctx, key)
}

func TestRegistryCacheAndSingleflight(t *testing.T) {
	kv := newKV(t)
	newRegistry(t, kv, nil).Create(ctx, auth.Device{DeviceID: "dev-1"})
	g := &gateKV{countingKV: kv, release: make(chan struct{})}
	r, _ := auth.NewRegistry(auth.RegistryConfig{KV: g})
	const n = 50
	var started, done sync.WaitGroup
	started.Add(n)
	for range n {
		done.Go(func() {
			started.Done()
			if _, err := r.Get(ctx, "dev-1"); err != nil {
				t.Error(err)
			}
		})
	}
	started.Wait()
	close(g.release)
	done.Wait()
	if m := g.maxSeen.Load(); m != 1 {
		t.Errorf("%d concurrent store reads of one device, want 1 (misses share one read)", m)
	}
	before := kv.gets.Load()
	if before >= n {
		t.Errorf("%d store reads for %d lookups", before, n)
	}
	for range 100 {
		r.Get(ctx, "dev-1")
	}
	if kv.gets.Load() != before {
		t.Errorf("warm lookups read the store %d times", kv.gets.Load()-before)
	}
}

func TestRegistryConfig(t *testing.T) {
	if _, err := auth.NewRegistry(auth.RegistryConfig{}); err == nil {
		t.Error("NewRegistry without a KV succeeded")
	}
}

func TestRegistryTouchOutOfRange(t *testing.T) {
	r := newRegistry(t, newKV(t), nil)
	r.Create(ctx, auth.Device{DeviceID: "dev-1"})
	if err := r.Touch(ctx, "dev-1", "", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, hubkit.ErrArgumentInvalid) {
		t.Errorf("Touch in year 12000 = %v, want ArgumentInvalid", err)
	}
	if _, err := r.Get(ctx, "dev-1"); err != nil {
		t.Error(err)
	}
}

func TestRegistrySetConnectionStates(t *testing.T) {
	kv := newKV(t)
	r := newRegistry(t, kv, nil)
	for _, id := range []string{"a", "b"} {
		if _, err := r.Create(ctx, auth.Device{DeviceID: id}); err != nil {
			t.Fatal(err)
		}
	}
	t1, t2 := testNow.Add(time.Second), testNow.Add(2*time.Second)
	err := r.SetConnectionStates(ctx, []auth.ConnectionChange{
		{DeviceID: "a", Connected: true, Time: t1},
		{DeviceID: "gone", Connected: true, Time: t1}, // skipped
		{DeviceID: "b", Connected: true, Time: t1},
		{DeviceID: "b", Connected: false, Time: t2}, // the later change wins
	})
	if err != nil {
		t.Fatal(err)
	}
	r2 := newRegistry(t, kv, nil) // what reached the store
	for _, want := range []struct {
		id    string
		state string
		at    time.Time
	}{{"a", auth.Connected, t1}, {"b", auth.Disconnected, t2}} {
		for name, reg := range map[string]*auth.Registry{"cache": r, "store": r2} {
			d, err := reg.Get(ctx, want.id)
			if err != nil || d.ConnectionState != want.state || !d.ConnectionStateUpdatedTime.Equal(want.at) {
				t.Errorf("%s: %s is %s since %v (%v), want %s since %v", name, want.id, d.ConnectionState, d.ConnectionStateUpdatedTime, err, want.state, want.at)
			}
		}
	}
}

// newPebbleKV returns the KV of a Pebble store on disk, closed when the
// test ends.
func newPebbleKV(t testing.TB) *countingKV {
	t.Helper()
	s, err := pebble.Open(t.TempDir(), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &countingKV{KV: s}
}

// holdKV holds every Write until release is closed, and closes entered
// when the first one starts.
type holdKV struct {
	*countingKV
	entered, release chan struct{}
	once             sync.Once
}

func (h *holdKV) Write(ctx context.Context, ops ...queue.KVOp) error {
	h.once.Do(func() { close(h.entered) })
	<-h.release
	return h.countingKV.Write(ctx, ops...)
}

// TestRegistryTouchDuringWrite checks that Touch never waits for a store
// write in progress, and that a Touch racing a write of the same device
// is not lost but reaches the store with the next write.
func TestRegistryTouchDuringWrite(t *testing.T) {
	kv := newPebbleKV(t)
	for _, id := range []string{"a", "b"} {
		if _, err := newRegistry(t, kv, nil).Create(ctx, auth.Device{DeviceID: id}); err != nil {
			t.Fatal(err)
		}
	}
	h := &holdKV{countingKV: kv, entered: make(chan struct{}), release: make(chan struct{})}
	r := newRegistry(t, &countingKV{KV: h}, nil)
	for _, id := range []string{"a", "b"} {
		if _, err := r.Get(ctx, id); err != nil { // cached: Touch records only cached identities
			t.Fatal(err)
		}
	}
	wrote := make(chan error, 1)
	go func() { wrote <- r.SetConnectionState(ctx, "a", "", true) }()
	<-h.entered

	ta, tb := testNow.Add(time.Minute), testNow.Add(2*time.Minute)
	var touched atomic.Bool
	go func() {
		if err := r.Touch(ctx, "b", "", tb); err != nil {
			t.Error(err)
		}
		if err := r.Touch(ctx, "a", "", ta); err != nil {
			t.Error(err)
		}
		touched.Store(true)
	}()
	poll.Until(t, "Touch to return while a store write is held", touched.Load)
	close(h.release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]time.Time{"a": ta, "b": tb} {
		if d, err := r.Get(ctx, id); err != nil || !d.LastActivityTime.Equal(want) {
			t.Errorf("%s: lastActivityTime %v (%v), want %v", id, d.LastActivityTime, err, want)
		}
	}
	if err := r.SetConnectionState(ctx, "a", "", false); err != nil {
		t.Fatal(err)
	}
	if d, err := newRegistry(t, kv, nil).Get(ctx, "a"); err != nil || !d.LastActivityTime.Equal(ta) {
		t.Errorf("stored lastActivityTime of a = %v (%v), want %v from the Touch during the earlier write", d.LastActivityTime, err, ta)
	}
}

// TestRegistryRemembersUnknownIDs checks that lookups of an unknown
// identity read the store once, and that creating it ends that.
func TestRegistryRemembersUnknownIDs(t *testing.T) {
	kv := newPebbleKV(t)
	r := newRegistry(t, kv, nil)
	if _, err := r.Create(ctx, auth.Device{DeviceID: "dev-1"}); err != nil {
		t.Fatal(err)
	}
	before := kv.gets.Load()
	for range 100 {
		if _, err := r.Get(ctx, "ghost"); !errors.Is(err, hubkit.ErrDeviceNotFound) {
			t.Fatalf("Get(ghost) = %v, want ErrDeviceNotFound", err)
		}
		if _, err := r.GetModule(ctx, "dev-1", "ghost"); !errors.Is(err, auth.ErrModuleNotFound) {
			t.Fatalf("GetModule(dev-1, ghost) = %v, want ErrModuleNotFound", err)
		}
	}
	if n := kv.gets.Load() - before; n != 2 {
		t.Errorf("200 lookups of unknown identities read the store %d times, want 2", n)
	}
	if _, err := r.Create(ctx, auth.Device{DeviceID: "ghost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "ghost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "ghost"); err != nil {
		t.Errorf("Get after Create = %v", err)
	}
	if _, err := r.GetModule(ctx, "dev-1", "ghost"); err != nil {
		t.Errorf("GetModule after CreateModule = %v", err)
	}

	// The memory is bounded: past its size, old unknown ids are read again.
	const n = 10001
	for i := range n {
		r.Get(ctx, fmt.Sprintf("unknown-%d", i))
	}
	before = kv.gets.Load()
	for i := range n {
		r.Get(ctx, fmt.Sprintf("unknown-%d", i))
	}
	if reads := kv.gets.Load() - before; reads == 0 || reads == n {
		t.Errorf("looking up %d unknown ids again read the store %d times, want some but not all", n, reads)
	}
}

func TestRegistryUpdateModule(t *testing.T) {
	var mu sync.Mutex
	var changes []auth.Change
	kv := newPebbleKV(t)
	r := newRegistry(t, kv, func(c auth.Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	})
	if _, err := r.UpdateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1"}, "*"); !errors.Is(err, hubkit.ErrDeviceNotFound) {
		t.Errorf("UpdateModule on a missing device = %v", err)
	}
	if _, err := r.Create(ctx, auth.Device{DeviceID: "dev-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UpdateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1"}, "*"); !errors.Is(err, auth.ErrModuleNotFound) {
		t.Errorf("UpdateModule of a missing module = %v", err)
	}
	m, err := r.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetConnectionState(ctx, "dev-1", "m1", true); err != nil {
		t.Fatal(err)
	}
	upd := m
	upd.Authentication = auth.Authentication{Type: "selfsigned", X509Thumbprint: auth.X509Thumbprint{PrimaryThumbprint: strings.Repeat("ab", 20)}}
	upd.ManagedBy, upd.GenerationID, upd.ConnectionState = "IotEdge", "1", auth.Disconnected
	if _, err := r.UpdateModule(ctx, upd, "bm9wZQ=="); !errors.Is(err, hubkit.ErrPreconditionFailed) {
		t.Errorf("UpdateModule with a stale etag = %v, want ErrPreconditionFailed", err)
	}
	bad := upd
	bad.Authentication.SymmetricKey.PrimaryKey = deviceKey
	if _, err := r.UpdateModule(ctx, bad, "*"); !errors.Is(err, hubkit.ErrArgumentInvalid) {
		t.Errorf("UpdateModule with keys and thumbprints = %v, want ArgumentInvalid", err)
	}
	u, err := r.UpdateModule(ctx, upd, `"`+m.ETag+`"`)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case u.ETag == m.ETag:
		t.Error("etag did not change")
	case u.GenerationID != m.GenerationID:
		t.Error("generationId changed on update")
	case u.ConnectionState != auth.Connected:
		t.Errorf("connectionState = %s, want the hub's Connected", u.ConnectionState)
	case u.Authentication.Type != auth.AuthSelfSigned || u.Authentication.SymmetricKey != (auth.SymmetricKey{}) || u.ManagedBy != "IotEdge":
		t.Errorf("updated module: %+v", u)
	}
	stored, err := newRegistry(t, kv, nil).GetModule(ctx, "dev-1", "m1")
	if err != nil || !reflect.DeepEqual(stored, u) {
		t.Errorf("stored module = %+v (%v)\nwant %+v", stored, err, u)
	}
	// Back to sas: empty keys are generated, and kept by the next update.
	u.Authentication = auth.Authentication{}
	u2, err := r.UpdateModule(ctx, u, "*")
	if err != nil || u2.Authentication.Type != auth.AuthSAS || u2.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Fatalf("UpdateModule to sas = %+v, %v", u2, err)
	}
	u2.ManagedBy = ""
	u2.Authentication.SymmetricKey = auth.SymmetricKey{}
	u3, err := r.UpdateModule(ctx, u2, u2.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.GetModule(ctx, "dev-1", "m1"); got.Authentication.SymmetricKey.PrimaryKey == "" || got.Authentication != u3.Authentication || got.ManagedBy != "" {
		t.Errorf("after an update with empty keys: %+v", got)
	}
	want := []auth.Change{
		{Kind: auth.Created, DeviceID: "dev-1", Enabled: true, CredentialsChanged: true},
		{Kind: auth.Created, DeviceID: "dev-1", ModuleID: "m1", Enabled: true, CredentialsChanged: true},
		{Kind: auth.Updated, DeviceID: "dev-1", ModuleID: "m1", Enabled: true, CredentialsChanged: true},
		{Kind: auth.Updated, DeviceID: "dev-1", ModuleID: "m1", Enabled: true, CredentialsChanged: true},
		{Kind: auth.Updated, DeviceID: "dev-1", ModuleID: "m1", Enabled: true},
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("changes:\n%+v\nwant\n%+v", changes, want)
	}
}
