package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// Registry errors that have no counterpart in package hubkit, numbered as
// IoT Hub numbers them.
var (
	ErrModuleNotFound      = &hubkit.Error{Code: 404010, Name: "ModuleNotFound"}
	ErrModuleAlreadyExists = &hubkit.Error{Code: 409301, Name: "ModuleAlreadyExistsOnDevice"}
)

// Status says whether a device may connect.
type Status string

// Device statuses.
const (
	StatusEnabled  Status = "enabled"
	StatusDisabled Status = "disabled"
)

// AuthType is how an identity authenticates.
type AuthType string

// Authentication types, as the registry JSON spells them.
const (
	AuthSAS                  AuthType = "sas"
	AuthSelfSigned           AuthType = "selfSigned"
	AuthCertificateAuthority AuthType = "certificateAuthority"
	AuthNone                 AuthType = "none"
)

// Connection states the hub records.
const (
	Connected    = "Connected"
	Disconnected = "Disconnected"
)

// SymmetricKey holds the base64 keys of a sas identity.
type SymmetricKey struct {
	// PrimaryKey is the base64 primary key, 16-64 bytes once decoded.
	PrimaryKey string `json:"primaryKey"`
	// SecondaryKey is the base64 secondary key, 16-64 bytes once decoded.
	SecondaryKey string `json:"secondaryKey"`
}

// X509Thumbprint holds the certificate thumbprints of a selfSigned identity.
type X509Thumbprint struct {
	// PrimaryThumbprint is the SHA-1 (40 hex digits) or SHA-256 (64 hex
	// digits) thumbprint of a certificate; required for selfSigned.
	PrimaryThumbprint string `json:"primaryThumbprint"`
	// SecondaryThumbprint is a second accepted thumbprint, or empty.
	SecondaryThumbprint string `json:"secondaryThumbprint"`
}

// Authentication is an identity's credentials.
type Authentication struct {
	// SymmetricKey holds the keys of a sas identity; empty otherwise.
	SymmetricKey SymmetricKey `json:"symmetricKey"`
	// X509Thumbprint holds the thumbprints of a selfSigned identity;
	// empty otherwise.
	X509Thumbprint X509Thumbprint `json:"x509Thumbprint"`
	// Type is sas (the default when empty), selfSigned,
	// certificateAuthority or none.
	Type AuthType `json:"type"`
}

// Capabilities are a device's optional capabilities.
type Capabilities struct {
	// IotEdge is true for an IoT Edge device.
	IotEdge bool `json:"iotEdge"`
}

// A Device is a device identity, with IoT Hub's REST field names so that
// the hub can serve it as is. Fields marked hub-maintained are ignored on
// Create and Update.
type Device struct {
	// DeviceID is the device's id, case-sensitive; it cannot change.
	DeviceID string `json:"deviceId"`
	// GenerationID is hub-maintained: 18 decimal digits, new on every create.
	GenerationID string `json:"generationId"`
	// ETag is hub-maintained: base64 text that changes on every Create and
	// Update (not on connection-state or activity updates).
	ETag string `json:"etag"`
	// ConnectionState is hub-maintained: Connected or Disconnected.
	ConnectionState string `json:"connectionState"`
	// Status says whether the device may connect; empty means enabled.
	Status Status `json:"status"`
	// StatusReason is free text of at most 128 characters, typically why
	// the device is disabled. JSON has null for an empty one.
	StatusReason string `json:"statusReason"`
	// ConnectionStateUpdatedTime is hub-maintained: when ConnectionState
	// last changed; the zero time until the device first connects.
	ConnectionStateUpdatedTime time.Time `json:"connectionStateUpdatedTime"`
	// StatusUpdatedTime is hub-maintained: when Status last changed; the
	// zero time (0001-01-01T00:00:00Z) until it first changes.
	StatusUpdatedTime time.Time `json:"statusUpdatedTime"`
	// LastActivityTime is hub-maintained, see Registry.Touch.
	LastActivityTime time.Time `json:"lastActivityTime"`
	// CloudToDeviceMessageCount is hub-maintained, see
	// Registry.SetCloudToDeviceMessageCount.
	CloudToDeviceMessageCount int `json:"cloudToDeviceMessageCount"`
	// Authentication holds the device's credentials.
	Authentication Authentication `json:"authentication"`
	// Capabilities are the device's optional capabilities.
	Capabilities Capabilities `json:"capabilities"`
	// DeviceScope is the device's scope in an IoT Edge hierarchy
	// (ms-azure-iot-edge://{id}-{n}), or empty.
	DeviceScope string `json:"deviceScope,omitempty"`
	// ParentScopes are the scopes of the device's parents in an IoT Edge
	// hierarchy.
	ParentScopes []string `json:"parentScopes,omitempty"`
}

// MarshalJSON encodes d as IoT Hub does, with null for an empty
// statusReason.
func (d Device) MarshalJSON() ([]byte, error) {
	type plain Device // without this method
	var reason *string
	if d.StatusReason != "" {
		reason = &d.StatusReason
	}
	return json.Marshal(struct {
		plain
		StatusReason *string `json:"statusReason"`
	}{plain(d), reason})
}

// A Module is a module identity of a device. Modules cannot be disabled.
// Fields marked hub-maintained are ignored on CreateModule and
// UpdateModule.
type Module struct {
	// ModuleID is the module's id, case-sensitive; it cannot change.
	ModuleID string `json:"moduleId"`
	// DeviceID is the id of the module's device.
	DeviceID string `json:"deviceId"`
	// GenerationID is hub-maintained: 18 decimal digits, new on every create.
	GenerationID string `json:"generationId"`
	// ETag is hub-maintained: base64 text that changes on every
	// CreateModule and UpdateModule.
	ETag string `json:"etag"`
	// ConnectionState is hub-maintained: Connected or Disconnected.
	ConnectionState string `json:"connectionState"`
	// ConnectionStateUpdatedTime is hub-maintained: when ConnectionState
	// last changed.
	ConnectionStateUpdatedTime time.Time `json:"connectionStateUpdatedTime"`
	// LastActivityTime is hub-maintained, see Registry.Touch.
	LastActivityTime time.Time `json:"lastActivityTime"`
	// CloudToDeviceMessageCount is hub-maintained.
	CloudToDeviceMessageCount int `json:"cloudToDeviceMessageCount"`
	// Authentication holds the module's credentials.
	Authentication Authentication `json:"authentication"`
	// ManagedBy names what manages the module (IotEdge for the modules of
	// an IoT Edge runtime), or is empty.
	ManagedBy string `json:"managedBy,omitempty"`
}

// ChangeKind says what a registry write did.
type ChangeKind int

// The kinds of registry change.
const (
	Created ChangeKind = iota + 1
	Updated
	Deleted
)

// A Change describes a committed registry write to a device or a module.
type Change struct {
	// Kind says what the write did.
	Kind ChangeKind
	// DeviceID is the device written, or the device of the module written.
	DeviceID string
	// ModuleID is the module written; empty for a device.
	ModuleID string
	// Enabled is false when the identity may no longer connect: deleted,
	// or disabled (a device's modules follow their device).
	Enabled bool
	// CredentialsChanged is true when keys, thumbprints or the
	// authentication type changed, so that live connections authenticated
	// with the old credentials may need to be closed.
	CredentialsChanged bool
}

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// KV stores the registry; required. Devices are stored as JSON under
	// Prefix+"devices/"+id, modules under Prefix+"modules/"+id+"/"+moduleID.
	KV queue.KV
	// Prefix is the key prefix of the registry's records. Empty means "registry/".
	Prefix string
	// OnChange, when set, is called after every Create, Update and Delete
	// of a device or module, once the write is durable and visible to
	// lookups, in commit order, from the writer's goroutine and with the
	// registry's write lock held: it must return quickly and must not call
	// the registry's write methods. The hub uses it to close the
	// connections of identities that were deleted or disabled.
	OnChange func(Change)
	// Now is the clock for the registry's timestamps. Nil means time.Now.
	Now func() time.Time
}

// A Registry is a hub's identity registry: devices and their modules, kept
// in a queue.KV and cached in memory. It is safe for concurrent use.
//
// Lookups serve from the cache; a miss reads the store once however many
// callers miss the same identity at the same time (a connect storm). The
// cache holds every identity looked up since the registry was made, and
// writes update it before they return, so that a disable or a key change
// takes effect at once. Ids the store lacks are remembered too (up to
// 10,000 of them) until they are created, so that a device retrying with an
// unknown id does not keep the store busy. The registry assumes it is the only writer of its
// records in the store: another process writing them would not be seen.
type Registry struct {
	kv       queue.KV
	prefix   string
	onChange func(Change)
	now      func() time.Time
	rand     io.Reader
	flight   singleflight.Group

	// Lock order: mu, then cmu. Only mu is held during store writes;
	// cmu is held for map operations only, so that lookups and Touch
	// never wait for a store write.
	mu sync.Mutex // serializes writes: check, store, cache, OnChange

	cmu     sync.RWMutex // guards the caches below
	devices map[string]*deviceEntry
	modules map[[2]string]*moduleEntry
	// missing holds identities the store did not have when last read,
	// {deviceID, ""} for devices, at most maxMissing of them: a device
	// that retries with an unknown id does not read the store each time.
	missing map[[2]string]struct{}
}

// maxMissing bounds the registry's cache of unknown identities. When it is
// full, an arbitrary entry makes room: forgetting one costs a store read.
const maxMissing = 10000

// A deviceEntry is a cached device; dev is nil for a deleted device. Entries
// are never modified once cached, only replaced, but for their activity
// time, which Touch sets.
type deviceEntry struct {
	dev *Device
	cred
}

// device returns a copy of the cached device with its latest activity.
func (e *deviceEntry) device() Device {
	d := e.dev.clone()
	d.LastActivityTime = e.last.get()
	return d
}

type moduleEntry struct {
	mod *Module
	cred
}

// cred is what a cached device or module entry keeps besides the identity
// itself: its decoded keys and its activity time.
type cred struct {
	key  SymmetricKey // what keys were decoded from
	keys keyPair
	last *activity // nil for a deleted identity
}

// renew sets c for an identity with key and lastActivity that replaces
// old (nil: none, or a deleted one). The decoded keys, with their pools of
// HMACs, carry over when the keys did not change, and the activity time
// carries over from a live entry, so that a Touch racing a write is kept.
func (c *cred) renew(old *cred, key SymmetricKey, lastActivity time.Time) {
	c.key = key
	if old != nil && old.last != nil && old.key == key {
		c.keys = old.keys
	} else {
		c.keys, _ = decodeKeys(key.PrimaryKey, key.SecondaryKey)
	}
	if old != nil && old.last != nil {
		c.last = old.last
		c.last.touch(lastActivity)
	} else {
		c.last = newActivity(lastActivity)
	}
}

// module returns a copy of the cached module with its latest activity.
func (e *moduleEntry) module() Module {
	m := *e.mod
	m.LastActivityTime = e.last.get()
	return m
}

// An activity is an identity's last activity time. Touch sets it with no
// lock, and it outlives the cache entry that held it first: each write
// of the identity hands it to the entry that replaces the old one, and
// writes the time it holds then, so that a Touch racing a write is not
// lost but reaches the store with the next write.
type activity struct{ t atomic.Pointer[time.Time] }

func newActivity(t time.Time) *activity {
	a := &activity{}
	a.t.Store(&t)
	return a
}

func (a *activity) get() time.Time { return *a.t.Load() }

// touch moves the time forward to t, when t is at least a second later.
func (a *activity) touch(t time.Time) {
	for {
		old := a.t.Load()
		if t.Sub(*old) < time.Second || a.t.CompareAndSwap(old, &t) {
			return
		}
	}
}

// NewRegistry returns a registry over cfg.KV. It reads nothing until used.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.KV == nil {
		return nil, errors.New("auth: invalid registry config: KV is nil")
	}
	r := &Registry{kv: cfg.KV, prefix: cfg.Prefix, onChange: cfg.OnChange, now: cfg.Now, rand: rand.Reader,
		devices: map[string]*deviceEntry{}, modules: map[[2]string]*moduleEntry{}, missing: map[[2]string]struct{}{}}
	if r.prefix == "" {
		r.prefix = "registry/"
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

func (r *Registry) deviceKey(id string) string    { return r.prefix + "devices/" + id }
func (r *Registry) moduleKey(id, m string) string { return r.prefix + "modules/" + id + "/" + m }

// Get returns the device with id, or an error wrapping
// hubkit.ErrDeviceNotFound. The returned value is the caller's.
func (r *Registry) Get(ctx context.Context, id string) (Device, error) {
	e, err := r.device(ctx, id)
	if err != nil {
		return Device{}, err
	}
	return e.device(), nil
}

// GetModule returns a module, or an error wrapping ErrModuleNotFound (or
// hubkit.ErrDeviceNotFound when the device does not exist).
func (r *Registry) GetModule(ctx context.Context, id, moduleID string) (Module, error) {
	e, err := r.module(ctx, id, moduleID)
	if err != nil {
		return Module{}, err
	}
	return e.module(), nil
}

func (d *Device) clone() Device {
	c := *d
	c.ParentScopes = append([]string(nil), d.ParentScopes...)
	if len(c.ParentScopes) == 0 {
		c.ParentScopes = nil
	}
	return c
}

// device returns the cached entry of a device, loading it on a miss.
func (r *Registry) device(ctx context.Context, id string) (*deviceEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := [2]string{id, ""}
	r.cmu.RLock()
	e := r.devices[id]
	_, missing := r.missing[k]
	r.cmu.RUnlock()
	if e == nil && missing {
		return nil, fmt.Errorf("auth: device %q: %w", clip(id), hubkit.ErrDeviceNotFound)
	}
	if e == nil {
		v, err := r.load(ctx, "d/"+id, func(ctx context.Context) (any, error) {
			var d Device
			if err := r.read(ctx, r.deviceKey(id), &d); err != nil {
				if errors.Is(err, queue.ErrNotFound) {
					r.rememberMissing(k)
				}
				return nil, err
			}
			e := &deviceEntry{dev: &d}
			e.renew(nil, d.Authentication.SymmetricKey, d.LastActivityTime)
			r.cmu.Lock()
			defer r.cmu.Unlock()
			if old := r.devices[id]; old != nil {
				return old, nil // a write got there first and is newer
			}
			r.devices[id] = e
			return e, nil
		})
		if err != nil {
			if errors.Is(err, queue.ErrNotFound) {
				return nil, fmt.Errorf("auth: device %q: %w", clip(id), hubkit.ErrDeviceNotFound)
			}
			return nil, fmt.Errorf("auth: get device %q: %w", clip(id), err)
		}
		e = v.(*deviceEntry)
	}
	if e.dev == nil {
		return nil, fmt.Errorf("auth: device %q: %w", clip(id), hubkit.ErrDeviceNotFound)
	}
	return e, nil
}

// module returns the cached entry of a module, loading it on a miss.
func (r *Registry) module(ctx context.Context, id, mid string) (*moduleEntry, error) {
	if _, err := r.device(ctx, id); err != nil {
		return nil, err
	}
	k := [2]string{id, mid}
	r.cmu.RLock()
	e := r.modules[k]
	_, missing := r.missing[k]
	r.cmu.RUnlock()
	if e == nil && missing {
		return nil, fmt.Errorf("auth: module %q of device %q: %w", clip(mid), clip(id), ErrModuleNotFound)
	}
	if e == nil {
		v, err := r.load(ctx, "m/"+id+"/"+mid, func(ctx context.Context) (any, error) {
			var m Module
			if err := r.read(ctx, r.moduleKey(id, mid), &m); err != nil {
				if errors.Is(err, queue.ErrNotFound) {
					r.rememberMissing(k)
				}
				return nil, err
			}
			e := &moduleEntry{mod: &m}
			e.renew(nil, m.Authentication.SymmetricKey, m.LastActivityTime)
			r.cmu.Lock()
			defer r.cmu.Unlock()
			if old := r.modules[k]; old != nil {
				return old, nil
			}
			r.modules[k] = e
			return e, nil
		})
		if err != nil {
			if errors.Is(err, queue.ErrNotFound) {
				return nil, fmt.Errorf("auth: module %q of device %q: %w", clip(mid), clip(id), ErrModuleNotFound)
			}
			return nil, fmt.Errorf("auth: get module %q of device %q: %w", clip(mid), clip(id), err)
		}
		e = v.(*moduleEntry)
	}
	if e.mod == nil {
		return nil, fmt.Errorf("auth: module %q of device %q: %w", clip(mid), clip(id), ErrModuleNotFound)
	}
	return e, nil
}

// load runs fn once for all concurrent callers with the same key. fn runs
// on a context that ignores the first caller's cancellation, so that one
// impatient caller does not fail the others; each caller stops waiting
// when its own ctx ends.
func (r *Registry) load(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	ch := r.flight.DoChan(key, func() (any, error) { return fn(context.WithoutCancel(ctx)) })
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Registry) read(ctx context.Context, key string, v any) error {
	b, err := r.kv.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("auth: stored record %s: %w", key, err)
	}
	return nil
}

// rememberMissing records that the store has no identity k, unless a
// write cached it meanwhile.
func (r *Registry) rememberMissing(k [2]string) {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	if k[1] == "" && r.devices[k[0]] != nil || k[1] != "" && r.modules[k] != nil {
		return
	}
	if len(r.missing) >= maxMissing {
		for old := range r.missing {
			delete(r.missing, old)
			break
		}
	}
	r.missing[k] = struct{}{}
}

// cacheDevice replaces the cached entry of id; dev nil marks it deleted.
func (r *Registry) cacheDevice(id string, dev *Device) {
	e := &deviceEntry{dev: dev}
	r.cmu.Lock()
	defer r.cmu.Unlock()
	delete(r.missing, [2]string{id, ""})
	if dev != nil {
		var old *cred
		if o := r.devices[id]; o != nil {
			old = &o.cred
		}
		e.renew(old, dev.Authentication.SymmetricKey, dev.LastActivityTime)
	}
	r.devices[id] = e
}

// cacheModule replaces the cached entry of a module; mod nil marks it
// deleted.
func (r *Registry) cacheModule(id, mid string, mod *Module) {
	e := &moduleEntry{mod: mod}
	key := [2]string{id, mid}
	r.cmu.Lock()
	defer r.cmu.Unlock()
	delete(r.missing, key)
	if mod != nil {
		var old *cred
		if o := r.modules[key]; o != nil {
			old = &o.cred
		}
		e.renew(old, mod.Authentication.SymmetricKey, mod.LastActivityTime)
	}
	r.modules[key] = e
}

// Create adds a device. It fills the hub-maintained fields, generates
// missing sas keys (32 random bytes each) and returns the stored device.
// Errors: hubkit.ErrDeviceAlreadyExists, hubkit.ErrArgumentInvalid for a
// bad id, status, reason, key (DeviceKeyLengthInvalid: keys must decode
// to 16-64 bytes) or thumbprint.
//
// Warning: ids may contain '#' and '+', as on IoT Hub, but those are
// MQTT wildcards that no PUBLISH topic may hold, so such a device (or
// module) cannot send or receive over MQTT; it can over HTTPS and AMQP.
func (r *Registry) Create(ctx context.Context, d Device) (Device, error) {
	if err := hubkit.ValidateDeviceID(d.DeviceID); err != nil {
		return Device{}, fmt.Errorf("auth: create device: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.device(ctx, d.DeviceID); err == nil {
		return Device{}, fmt.Errorf("auth: create device %q: %w", d.DeviceID, hubkit.ErrDeviceAlreadyExists)
	} else if !errors.Is(err, hubkit.ErrDeviceNotFound) {
		return Device{}, err
	}
	n := d.clone()
	n.GenerationID, n.ConnectionState, n.ConnectionStateUpdatedTime = "", Disconnected, time.Time{}
	n.StatusUpdatedTime, n.LastActivityTime, n.CloudToDeviceMessageCount = time.Time{}, time.Time{}, 0
	if err := r.normalize(&n.Status, &n.StatusReason, &n.Authentication, nil, &n.ETag, &n.GenerationID); err != nil {
		return Device{}, fmt.Errorf("auth: create device %q: %w", d.DeviceID, err)
	}
	if err := r.put(ctx, r.deviceKey(n.DeviceID), &n); err != nil {
		return Device{}, fmt.Errorf("auth: create device %q: %w", d.DeviceID, err)
	}
	r.cacheDevice(n.DeviceID, &n)
	r.notify(Change{Kind: Created, DeviceID: n.DeviceID, Enabled: n.Status == StatusEnabled, CredentialsChanged: true})
	return n.clone(), nil
}

// Update replaces the device d.DeviceID when its etag matches ifMatch (""
// or "*" match any). Hub-maintained fields keep their stored values; the
// etag changes, and statusUpdatedTime when the status changes. Empty sas
// keys keep the stored keys, or are generated. Errors:
// hubkit.ErrDeviceNotFound, hubkit.ErrPreconditionFailed, and those of
// Create.
func (r *Registry) Update(ctx context.Context, d Device, ifMatch string) (Device, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.device(ctx, d.DeviceID)
	if err != nil {
		return Device{}, err
	}
	old := e.dev
	if !etagMatches(old.ETag, ifMatch) {
		return Device{}, fmt.Errorf("auth: update device %q: etag %q does not match: %w", d.DeviceID, clip(ifMatch), hubkit.ErrPreconditionFailed)
	}
	n := d.clone()
	n.GenerationID, n.ConnectionState, n.ConnectionStateUpdatedTime = old.GenerationID, old.ConnectionState, old.ConnectionStateUpdatedTime
	n.StatusUpdatedTime, n.LastActivityTime, n.CloudToDeviceMessageCount = old.StatusUpdatedTime, e.last.get(), old.CloudToDeviceMessageCount
	if err := r.normalize(&n.Status, &n.StatusReason, &n.Authentication, &old.Authentication, &n.ETag, nil); err != nil {
		return Device{}, fmt.Errorf("auth: update device %q: %w", d.DeviceID, err)
	}
	for n.ETag == old.ETag {
		n.ETag = r.etag()
	}
	if n.Status != old.Status {
		n.StatusUpdatedTime = r.now().UTC()
	}
	if err := r.put(ctx, r.deviceKey(n.DeviceID), &n); err != nil {
		return Device{}, fmt.Errorf("auth: update device %q: %w", d.DeviceID, err)
	}
	r.cacheDevice(n.DeviceID, &n)
	r.notify(Change{Kind: Updated, DeviceID: n.DeviceID, Enabled: n.Status == StatusEnabled, CredentialsChanged: n.Authentication != old.Authentication})
	return n.clone(), nil
}

// Delete removes the device and its modules when its etag matches ifMatch
// ("" or "*" match any). Errors: hubkit.ErrDeviceNotFound,
// hubkit.ErrPreconditionFailed.
func (r *Registry) Delete(ctx context.Context, id, ifMatch string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.device(ctx, id)
	if err != nil {
		return err
	}
	if !etagMatches(e.dev.ETag, ifMatch) {
		return fmt.Errorf("auth: delete device %q: etag %q does not match: %w", id, clip(ifMatch), hubkit.ErrPreconditionFailed)
	}
	mods, err := r.listModules(ctx, id)
	if err != nil {
		return fmt.Errorf("auth: delete device %q: %w", id, err)
	}
	ops := []queue.KVOp{{Key: r.deviceKey(id), Delete: true}}
	for _, m := range mods {
		ops = append(ops, queue.KVOp{Key: r.moduleKey(id, m.ModuleID), Delete: true})
	}
	if err := r.kv.Write(ctx, ops...); err != nil {
		return fmt.Errorf("auth: delete device %q: %w", id, err)
	}
	r.cacheDevice(id, nil)
	for _, m := range mods {
		r.cacheModule(id, m.ModuleID, nil)
	}
	r.notify(Change{Kind: Deleted, DeviceID: id})
	for _, m := range mods {
		r.notify(Change{Kind: Deleted, DeviceID: id, ModuleID: m.ModuleID})
	}
	return nil
}

// MaxListLimit is the most devices one List call returns.
const MaxListLimit = 1000

// List returns up to limit devices whose ids sort after after ("" starts
// at the beginning), in id order (byte order). A limit of 0 means
// MaxListLimit; a negative one or one above MaxListLimit is
// hubkit.ErrArgumentInvalid. To page, pass the last id returned as after.
func (r *Registry) List(ctx context.Context, after string, limit int) ([]Device, error) {
	if limit == 0 {
		limit = MaxListLimit
	}
	if limit < 0 || limit > MaxListLimit {
		return nil, fmt.Errorf("auth: list devices: %w: limit %d is not between 1 and %d", hubkit.ErrArgumentInvalid, limit, MaxListLimit)
	}
	p := r.prefix + "devices/"
	start := ""
	if after != "" {
		start = p + after
	}
	kvs, err := r.kv.List(ctx, p, start, limit)
	if err != nil {
		return nil, fmt.Errorf("auth: list devices: %w", err)
	}
	out := make([]Device, 0, len(kvs))
	for _, kv := range kvs {
		id := strings.TrimPrefix(kv.Key, p)
		r.cmu.RLock()
		e := r.devices[id]
		r.cmu.RUnlock()
		if e != nil && e.dev != nil {
			out = append(out, e.device()) // fresher: unpersisted activity
			continue
		}
		var d Device
		if err := json.Unmarshal(kv.Value, &d); err != nil {
			return nil, fmt.Errorf("auth: stored record %s: %w", kv.Key, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// SetConnectionState records that the device (moduleID empty) or module
// connected or disconnected, with the time, durably. It does not change
// the etag or call OnChange.
func (r *Registry) SetConnectionState(ctx context.Context, id, moduleID string, connected bool) error {
	state := Disconnected
	if connected {
		state = Connected
	}
	now := r.now().UTC()
	return r.updateHubFields(ctx, id, moduleID, func(h *hubFields) {
		*h.state, *h.stateTime = state, now
	})
}

// Touch records activity of the device or module at t (connect, send,
// receive) in the cached identity only: it never reads or writes the
// store and takes no lock that a store write holds, so that it costs
// nothing on the message path and never waits for a sync or for another
// registry write. The time reaches the store with the identity's next write
// (a connection state change, an update); after a crash the stored value
// may lag, as IoT Hub's own value may. An identity not in the cache (never
// looked up since the registry started) is left alone. Times less than a
// second apart are not recorded separately.
func (r *Registry) Touch(ctx context.Context, id, moduleID string, t time.Time) error {
	if y := t.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("auth: touch %q: time %v out of range: %w", clip(id), t, hubkit.ErrArgumentInvalid)
	}
	var a *activity
	r.cmu.RLock()
	if moduleID == "" {
		if e := r.devices[id]; e != nil {
			a = e.last
		}
	} else if e := r.modules[[2]string{id, moduleID}]; e != nil {
		a = e.last
	}
	r.cmu.RUnlock()
	if a != nil {
		a.touch(t.UTC())
	}
	return nil
}

// SetCloudToDeviceMessageCount records how many messages wait in the
// device's cloud-to-device queue, durably.
func (r *Registry) SetCloudToDeviceMessageCount(ctx context.Context, id string, n int) error {
	return r.updateHubFields(ctx, id, "", func(h *hubFields) { *h.count = n })
}

// hubFields points at the hub-maintained fields of a device or module.
type hubFields struct {
	state     *string
	stateTime *time.Time
	count     *int
}

// updateHubFields lets f change the hub-maintained fields of a device or
// module (moduleID not empty), writes the result and caches it.
func (r *Registry) updateHubFields(ctx context.Context, id, mid string, f func(*hubFields)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	op, cache, err := r.hubUpdate(ctx, id, mid, f)
	if err != nil {
		return err
	}
	if err := r.kv.Write(ctx, op); err != nil {
		return fmt.Errorf("auth: update %s: %w", op.Key, err)
	}
	cache()
	return nil
}

// hubUpdate prepares a change of the hub-maintained fields of a device or
// module: the write, and the cache update to make once it is durable.
// Callers hold r.mu.
func (r *Registry) hubUpdate(ctx context.Context, id, mid string, f func(*hubFields)) (queue.KVOp, func(), error) {
	var (
		key   string
		h     hubFields
		rec   any
		cache func()
	)
	if mid != "" {
		e, err := r.module(ctx, id, mid)
		if err != nil {
			return queue.KVOp{}, nil, err
		}
		m := e.module()
		key, rec = r.moduleKey(id, mid), &m
		h = hubFields{&m.ConnectionState, &m.ConnectionStateUpdatedTime, &m.CloudToDeviceMessageCount}
		cache = func() { r.cacheModule(id, mid, &m) }
	} else {
		e, err := r.device(ctx, id)
		if err != nil {
			return queue.KVOp{}, nil, err
		}
		d := e.device()
		key, rec = r.deviceKey(id), &d
		h = hubFields{&d.ConnectionState, &d.ConnectionStateUpdatedTime, &d.CloudToDeviceMessageCount}
		cache = func() { r.cacheDevice(id, &d) }
	}
	f(&h)
	b, err := json.Marshal(rec)
	if err != nil {
		return queue.KVOp{}, nil, fmt.Errorf("auth: update %s: %w: %w", key, hubkit.ErrArgumentInvalid, err)
	}
	return queue.KVOp{Key: key, Value: b}, cache, nil
}

// A ConnectionChange is one identity's connection state, for
// [Registry.SetConnectionStates].
type ConnectionChange struct {
	// DeviceID is the device, or the device of the module.
	DeviceID string
	// ModuleID is the module; empty for a device.
	ModuleID string
	// Connected is the new state: true for Connected.
	Connected bool
	// Time is when the state changed.
	Time time.Time
}

// SetConnectionStates records the connection states of several
// identities in one durable write, as SetConnectionState records one; the
// times are those given, and a later change of an identity in the list
// wins over an earlier one. Identities that no longer exist are skipped.
// It does not change etags or call OnChange.
func (r *Registry) SetConnectionStates(ctx context.Context, changes []ConnectionChange) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := make([]queue.KVOp, 0, len(changes))
	caches := make([]func(), 0, len(changes))
	for _, c := range changes {
		state, t := Disconnected, c.Time.UTC()
		if c.Connected {
			state = Connected
		}
		op, cache, err := r.hubUpdate(ctx, c.DeviceID, c.ModuleID, func(h *hubFields) { *h.state, *h.stateTime = state, t })
		if errors.Is(err, hubkit.ErrDeviceNotFound) || errors.Is(err, ErrModuleNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		ops, caches = append(ops, op), append(caches, cache)
	}
	if len(ops) == 0 {
		return nil
	}
	if err := r.kv.Write(ctx, ops...); err != nil {
		return fmt.Errorf("auth: record %d connection states: %w", len(ops), err)
	}
	for _, cache := range caches {
		cache()
	}
	return nil
}

// CreateModule adds a module to an existing device, like Create.
// Errors: hubkit.ErrDeviceNotFound, ErrModuleAlreadyExists,
// hubkit.ErrArgumentInvalid.
func (r *Registry) CreateModule(ctx context.Context, m Module) (Module, error) {
	if err := hubkit.ValidateDeviceID(m.ModuleID); err != nil {
		return Module{}, fmt.Errorf("auth: create module: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.module(ctx, m.DeviceID, m.ModuleID); err == nil {
		return Module{}, fmt.Errorf("auth: create module %q of device %q: %w", m.ModuleID, m.DeviceID, ErrModuleAlreadyExists)
	} else if !errors.Is(err, ErrModuleNotFound) {
		return Module{}, err
	}
	m.ConnectionState, m.ConnectionStateUpdatedTime, m.LastActivityTime, m.CloudToDeviceMessageCount = Disconnected, time.Time{}, time.Time{}, 0
	if err := r.normalize(nil, nil, &m.Authentication, nil, &m.ETag, &m.GenerationID); err != nil {
		return Module{}, fmt.Errorf("auth: create module %q of device %q: %w", m.ModuleID, m.DeviceID, err)
	}
	if err := r.put(ctx, r.moduleKey(m.DeviceID, m.ModuleID), &m); err != nil {
		return Module{}, fmt.Errorf("auth: create module %q of device %q: %w", m.ModuleID, m.DeviceID, err)
	}
	r.cacheModule(m.DeviceID, m.ModuleID, &m)
	r.notify(Change{Kind: Created, DeviceID: m.DeviceID, ModuleID: m.ModuleID, Enabled: true, CredentialsChanged: true})
	return m, nil
}

// UpdateModule replaces the module m.ModuleID of device m.DeviceID when
// its etag matches ifMatch ("" or "*" match any), as Update replaces a
// device: hub-maintained fields keep their stored values, the etag
// changes, and the authentication (type, keys, thumbprints) and
// ManagedBy are m's. Empty sas keys keep the stored keys, or are
// generated. OnChange reports the module Updated, enabled as its device
// is. Errors: hubkit.ErrDeviceNotFound, ErrModuleNotFound,
// hubkit.ErrPreconditionFailed, hubkit.ErrArgumentInvalid.
func (r *Registry) UpdateModule(ctx context.Context, m Module, ifMatch string) (Module, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	de, err := r.device(ctx, m.DeviceID)
	if err != nil {
		return Module{}, err
	}
	e, err := r.module(ctx, m.DeviceID, m.ModuleID)
	if err != nil {
		return Module{}, err
	}
	old := e.mod
	if !etagMatches(old.ETag, ifMatch) {
		return Module{}, fmt.Errorf("auth: update module %q of device %q: etag %q does not match: %w", m.ModuleID, m.DeviceID, clip(ifMatch), hubkit.ErrPreconditionFailed)
	}
	m.GenerationID, m.ConnectionState, m.ConnectionStateUpdatedTime = old.GenerationID, old.ConnectionState, old.ConnectionStateUpdatedTime
	m.LastActivityTime, m.CloudToDeviceMessageCount = e.last.get(), old.CloudToDeviceMessageCount
	if err := r.normalize(nil, nil, &m.Authentication, &old.Authentication, &m.ETag, nil); err != nil {
		return Module{}, fmt.Errorf("auth: update module %q of device %q: %w", m.ModuleID, m.DeviceID, err)
	}
	for m.ETag == old.ETag {
		m.ETag = r.etag()
	}
	if err := r.put(ctx, r.moduleKey(m.DeviceID, m.ModuleID), &m); err != nil {
		return Module{}, fmt.Errorf("auth: update module %q of device %q: %w", m.ModuleID, m.DeviceID, err)
	}
	r.cacheModule(m.DeviceID, m.ModuleID, &m)
	r.notify(Change{Kind: Updated, DeviceID: m.DeviceID, ModuleID: m.ModuleID, Enabled: de.dev.Status == StatusEnabled,
		CredentialsChanged: m.Authentication != old.Authentication})
	return m, nil
}

// DeleteModule removes a module when its etag matches ifMatch ("" or "*"
// match any). Errors: hubkit.ErrDeviceNotFound, ErrModuleNotFound,
// hubkit.ErrPreconditionFailed.
func (r *Registry) DeleteModule(ctx context.Context, id, moduleID, ifMatch string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.module(ctx, id, moduleID)
	if err != nil {
		return err
	}
	if !etagMatches(e.mod.ETag, ifMatch) {
		return fmt.Errorf("auth: delete module %q of device %q: %w", moduleID, id, hubkit.ErrPreconditionFailed)
	}
	if err := r.kv.Write(ctx, queue.KVOp{Key: r.moduleKey(id, moduleID), Delete: true}); err != nil {
		return fmt.Errorf("auth: delete module %q of device %q: %w", moduleID, id, err)
	}
	r.cacheModule(id, moduleID, nil)
	r.notify(Change{Kind: Deleted, DeviceID: id, ModuleID: moduleID})
	return nil
}

// ListModules returns the modules of a device in id order.
func (r *Registry) ListModules(ctx context.Context, id string) ([]Module, error) {
	if _, err := r.device(ctx, id); err != nil {
		return nil, err
	}
	return r.listModules(ctx, id)
}

func (r *Registry) listModules(ctx context.Context, id string) ([]Module, error) {
	var out []Module
	p := r.moduleKey(id, "")
	after := ""
	for {
		kvs, err := r.kv.List(ctx, p, after, MaxListLimit)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			var m Module
			if err := json.Unmarshal(kv.Value, &m); err != nil {
				return nil, fmt.Errorf("auth: stored record %s: %w", kv.Key, err)
			}
			out = append(out, m)
		}
		if len(kvs) < MaxListLimit {
			return out, nil
		}
		after = kvs[len(kvs)-1].Key
	}
}

// normalize checks and completes status, reason and authentication
// (status and reason nil for modules), generates a new etag and, when
// generationID is not nil, a new generation id. old is the stored
// authentication on update, whose keys empty sas keys keep.
func (r *Registry) normalize(status *Status, reason *string, a, old *Authentication, etag, generationID *string) error {
	if status != nil {
		switch {
		case *status == "" || strings.EqualFold(string(*status), string(StatusEnabled)):
			*status = StatusEnabled
		case strings.EqualFold(string(*status), string(StatusDisabled)):
			*status = StatusDisabled
		default:
			return fmt.Errorf("%w: status %q is not enabled or disabled", hubkit.ErrArgumentInvalid, clip(string(*status)))
		}
		if n := utf8.RuneCountInString(*reason); n > 128 || !utf8.ValidString(*reason) {
			return fmt.Errorf("%w: statusReason must be valid UTF-8 of at most 128 characters", hubkit.ErrArgumentInvalid)
		}
	}
	for _, t := range []AuthType{AuthSAS, AuthSelfSigned, AuthCertificateAuthority, AuthNone} {
		if strings.EqualFold(string(a.Type), string(t)) {
			a.Type = t
		}
	}
	if a.Type == "" {
		a.Type = AuthSAS
	}
	k, tp := &a.SymmetricKey, &a.X509Thumbprint
	switch a.Type {
	case AuthSAS:
		if *tp != (X509Thumbprint{}) {
			return fmt.Errorf("%w: a sas identity has no thumbprints", hubkit.ErrArgumentInvalid)
		}
		if old != nil && old.Type == AuthSAS && *k == (SymmetricKey{}) {
			*k = old.SymmetricKey
		}
		for _, key := range []*string{&k.PrimaryKey, &k.SecondaryKey} {
			if *key == "" {
				var err error
				if *key, err = newKey(r.rand); err != nil {
					return err
				}
			}
		}
		if _, err := decodeKeys(k.PrimaryKey, k.SecondaryKey); err != nil {
			return err
		}
	case AuthSelfSigned:
		if *k != (SymmetricKey{}) {
			return fmt.Errorf("%w: a selfSigned identity has no symmetric keys", hubkit.ErrArgumentInvalid)
		}
		if err := ValidateThumbprint(tp.PrimaryThumbprint); err != nil {
			return fmt.Errorf("primary thumbprint: %w", err)
		}
		if tp.SecondaryThumbprint != "" {
			if err := ValidateThumbprint(tp.SecondaryThumbprint); err != nil {
				return fmt.Errorf("secondary thumbprint: %w", err)
			}
		}
	case AuthCertificateAuthority, AuthNone:
		if *k != (SymmetricKey{}) || *tp != (X509Thumbprint{}) {
			return fmt.Errorf("%w: a %s identity has neither keys nor thumbprints", hubkit.ErrArgumentInvalid, a.Type)
		}
	default:
		return fmt.Errorf("%w: authentication type %q is not sas, selfSigned, certificateAuthority or none", hubkit.ErrArgumentInvalid, clip(string(a.Type)))
	}
	*etag = r.etag()
	if generationID != nil {
		*generationID = r.generationID()
	}
	return nil
}

// etag returns a fresh etag: base64 of a random decimal number, the form
// IoT Hub's etags take (e.g. NzA2NjU2ODc=).
func (r *Registry) etag() string {
	return base64.StdEncoding.EncodeToString([]byte(strconv.FormatUint(uint64(r.random()%1e9), 10)))
}

// generationID returns 18 random decimal digits, the first not zero.
func (r *Registry) generationID() string {
	return strconv.FormatUint(1e17+r.random()%(9e17), 10)
}

func (r *Registry) random() uint64 {
	var b [8]byte
	if _, err := io.ReadFull(r.rand, b[:]); err != nil {
		// Only a broken crypto/rand gets here; ids must still differ.
		b = [8]byte(binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())))
	}
	return binary.BigEndian.Uint64(b[:])
}

func etagMatches(etag, ifMatch string) bool {
	ifMatch = strings.Trim(ifMatch, `"`)
	return ifMatch == "" || ifMatch == "*" || ifMatch == etag
}

func (r *Registry) notify(c Change) {
	if r.onChange != nil {
		r.onChange(c)
	}
}

// put stores a registry record as JSON. Encoding fails only for times
// outside years 0-9999.
func (r *Registry) put(ctx context.Context, key string, rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("%w: %w", hubkit.ErrArgumentInvalid, err)
	}
	return r.kv.Write(ctx, queue.KVOp{Key: key, Value: b})
}
