package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// Permission is a set of shared access policy rights.
type Permission uint8

// The rights a shared access policy can hold.
const (
	// RegistryRead allows reading the identity registry.
	RegistryRead Permission = 1 << iota
	// RegistryWrite allows creating, updating and deleting identities; it
	// implies RegistryRead.
	RegistryWrite
	// ServiceConnect allows the service endpoints: reading device-to-cloud
	// messages, sending cloud-to-device messages, feedback, twins, methods.
	ServiceConnect
	// DeviceConnect allows the device endpoints on behalf of any device.
	DeviceConnect
)

var permissionNames = [...]string{"RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"}

// Has reports whether p grants every right in need. RegistryWrite implies
// RegistryRead.
func (p Permission) Has(need Permission) bool {
	if p&RegistryWrite != 0 {
		p |= RegistryRead
	}
	return p&need == need
}

// String returns the rights as IoT Hub writes them, e.g.
// "RegistryRead, RegistryWrite".
func (p Permission) String() string {
	var names []string
	for i, n := range permissionNames {
		if p&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// MarshalText returns p.String().
func (p Permission) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses rights separated by commas, matched
// case-insensitively; "RegistryReadWrite" means RegistryRead and
// RegistryWrite.
func (p *Permission) UnmarshalText(b []byte) error {
	var q Permission
	for _, f := range strings.Split(string(b), ",") {
		f = strings.TrimSpace(f)
		i := slices.IndexFunc(permissionNames[:], func(n string) bool { return strings.EqualFold(n, f) })
		switch {
		case f == "":
		case i >= 0:
			q |= 1 << i
		case strings.EqualFold(f, "RegistryReadWrite"):
			q |= RegistryRead | RegistryWrite
		default:
			return fmt.Errorf("%w: unknown permission %q", hubkit.ErrArgumentInvalid, clip(f))
		}
	}
	*p = q
	return nil
}

// A Policy is a shared access policy: a named pair of keys and the rights a
// token signed with either key gets. The JSON form is the one the hub
// persists.
type Policy struct {
	// KeyName is the policy's name, the skn of its tokens.
	KeyName string `json:"keyName"`
	// PrimaryKey is the policy's base64 primary key.
	PrimaryKey string `json:"primaryKey"`
	// SecondaryKey is the policy's base64 secondary key.
	SecondaryKey string `json:"secondaryKey"`
	// Rights are the permissions a token signed with either key gets.
	Rights Permission `json:"rights"`
}

// DefaultPolicies returns the names and rights of the policies every IoT
// Hub starts with, without keys; NewPolicies creates them with fresh keys in
// an empty store.
func DefaultPolicies() []Policy {
	return []Policy{
		{KeyName: "iothubowner", Rights: RegistryRead | RegistryWrite | ServiceConnect | DeviceConnect},
		{KeyName: "service", Rights: ServiceConnect},
		{KeyName: "device", Rights: DeviceConnect},
		{KeyName: "registryRead", Rights: RegistryRead},
		{KeyName: "registryReadWrite", Rights: RegistryRead | RegistryWrite},
	}
}

// Policies is the set of shared access policies of a hub, persisted in a
// queue.KV under the prefix "policies/". It is safe for concurrent use;
// lookups (one per policy-signed token) take no lock.
type Policies struct {
	kv     queue.KV
	prefix string
	rand   io.Reader

	mu  sync.Mutex                              // serializes Set and Delete
	set atomic.Pointer[map[string]*policyEntry] // copy on write
}

type policyEntry struct {
	Policy
	keys keyPair
}

// NewPolicies loads the policies stored in kv under prefix + "policies/".
// When none are stored it creates DefaultPolicies with random 32-byte keys
// and stores them. A nil kv keeps the policies in memory only.
func NewPolicies(ctx context.Context, kv queue.KV, prefix string) (*Policies, error) {
	p := &Policies{kv: kv, prefix: prefix + "policies/", rand: rand.Reader}
	m := map[string]*policyEntry{}
	if kv != nil {
		after := ""
		for {
			kvs, err := kv.List(ctx, p.prefix, after, 1000)
			if err != nil {
				return nil, fmt.Errorf("auth: load policies: %w", err)
			}
			for _, e := range kvs {
				var pol Policy
				if err := json.Unmarshal(e.Value, &pol); err != nil {
					return nil, fmt.Errorf("auth: load policy %s: %w", e.Key, err)
				}
				pe, err := newPolicyEntry(pol)
				if err != nil {
					return nil, fmt.Errorf("auth: load policy %s: %w", e.Key, err)
				}
				m[pol.KeyName] = pe
			}
			if len(kvs) < 1000 {
				break
			}
			after = kvs[len(kvs)-1].Key
		}
	}
	p.set.Store(&m)
	if len(m) > 0 {
		return p, nil
	}
	for _, d := range DefaultPolicies() {
		if err := p.Set(ctx, d); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func newPolicyEntry(p Policy) (*policyEntry, error) {
	if p.KeyName == "" || len(p.KeyName) > 64 || strings.ContainsAny(p.KeyName, "/&=;") {
		return nil, fmt.Errorf("%w: policy name %q must be 1 to 64 characters without / & = ;", hubkit.ErrArgumentInvalid, clip(p.KeyName))
	}
	var e policyEntry
	e.Policy = p
	var err error
	if e.keys, err = decodeKeys(p.PrimaryKey, p.SecondaryKey); err != nil {
		return nil, fmt.Errorf("policy %s: %w", p.KeyName, err)
	}
	return &e, nil
}

// Get returns the policy named name (case-sensitive).
func (p *Policies) Get(name string) (Policy, bool) {
	e := (*p.set.Load())[name]
	if e == nil {
		return Policy{}, false
	}
	return e.Policy, true
}

func (p *Policies) entry(name string) *policyEntry { return (*p.set.Load())[name] }

// List returns every policy, sorted by name.
func (p *Policies) List() []Policy {
	m := *p.set.Load()
	out := make([]Policy, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k].Policy)
	}
	return out
}

// Set creates or replaces a policy durably. Keys left empty are generated
// (32 random bytes); given keys must decode to 16 to 64 bytes. Tokens
// signed with replaced keys stop verifying at once.
func (p *Policies) Set(ctx context.Context, pol Policy) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	for _, k := range []*string{&pol.PrimaryKey, &pol.SecondaryKey} {
		if *k == "" {
			if *k, err = newKey(p.rand); err != nil {
				return err
			}
		}
	}
	e, err := newPolicyEntry(pol)
	if err != nil {
		return fmt.Errorf("auth: set policy: %w", err)
	}
	if p.kv != nil {
		b, _ := json.Marshal(pol)
		if err := p.kv.Write(ctx, queue.KVOp{Key: p.prefix + pol.KeyName, Value: b}); err != nil {
			return fmt.Errorf("auth: set policy %s: %w", pol.KeyName, err)
		}
	}
	m := maps.Clone(*p.set.Load())
	m[pol.KeyName] = e
	p.set.Store(&m)
	return nil
}

// Delete removes the policy named name durably; tokens it signed stop
// verifying at once. Deleting a missing policy is not an error.
func (p *Policies) Delete(ctx context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kv != nil {
		if err := p.kv.Write(ctx, queue.KVOp{Key: p.prefix + name, Delete: true}); err != nil {
			return fmt.Errorf("auth: delete policy %s: %w", name, err)
		}
	}
	m := maps.Clone(*p.set.Load())
	delete(m, name)
	p.set.Store(&m)
	return nil
}

// Key lengths IoT Hub accepts, in bytes after base64 decoding.
const (
	MinKeyLength = 16
	MaxKeyLength = 64
)

// errKeyLength wraps hubkit.ErrArgumentInvalid with IoT Hub's name for the
// problem.
var errKeyLength = fmt.Errorf("%w: DeviceKeyLengthInvalid: keys must be base64 of %d to %d bytes", hubkit.ErrArgumentInvalid, MinKeyLength, MaxKeyLength)

// decodeKeys checks and decodes a primary and secondary key; an empty key
// gives a nil macKey.
func decodeKeys(primary, secondary string) (keyPair, error) {
	var p keyPair
	for i, k := range []string{primary, secondary} {
		if k == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(b) < MinKeyLength || len(b) > MaxKeyLength {
			return p, errKeyLength
		}
		mk, _ := newMACKey(k)
		if i == 0 {
			p.primary = mk
		} else {
			p.secondary = mk
		}
	}
	return p, nil
}

// newKey returns a random 32-byte key, base64-encoded.
func newKey(r io.Reader) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("auth: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}
