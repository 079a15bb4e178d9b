package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
)

func TestPermission(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p, need auth.Permission
		want    bool
	}{
		{"write implies read", auth.RegistryWrite, auth.RegistryRead, true},
		{"read does not imply write", auth.RegistryRead, auth.RegistryWrite, false},
		{"service connect is not device connect", auth.ServiceConnect, auth.DeviceConnect, false},
		{"several rights in any order", auth.RegistryRead | auth.DeviceConnect, auth.DeviceConnect | auth.RegistryRead, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Has(tc.need); got != tc.want {
				t.Errorf("(%v).Has(%v) = %v", tc.p, tc.need, got)
			}
		})
	}
	var p auth.Permission
	if err := p.UnmarshalText([]byte("registryReadWrite, ServiceConnect")); err != nil || p != auth.RegistryRead|auth.RegistryWrite|auth.ServiceConnect {
		t.Errorf("UnmarshalText = %v, %v", p, err)
	}
	if p.String() != "RegistryRead, RegistryWrite, ServiceConnect" {
		t.Errorf("String = %q", p.String())
	}
	if err := p.UnmarshalText([]byte("Everything")); !errors.Is(err, hubkit.ErrArgumentInvalid) {
		t.Errorf("UnmarshalText(unknown) = %v", err)
	}
	b, _ := json.Marshal(auth.Policy{KeyName: "x", Rights: auth.DeviceConnect})
	if string(b) != `{"keyName":"x","primaryKey":"","secondaryKey":"","rights":"DeviceConnect"}` {
		t.Errorf("policy JSON = %s", b)
	}
}

func TestPoliciesDefaultsAndPersistence(t *testing.T) {
	kv := newKV(t)
	p := newPolicies(t, kv)
	want := map[string]auth.Permission{}
	for _, d := range auth.DefaultPolicies() {
		want[d.KeyName] = d.Rights
	}
	got := p.List()
	if len(got) != len(want) {
		t.Fatalf("List = %+v", got)
	}
	for _, pol := range got {
		b, err := base64.StdEncoding.DecodeString(pol.PrimaryKey)
		if want[pol.KeyName] != pol.Rights || err != nil || len(b) != 32 || pol.PrimaryKey == pol.SecondaryKey {
			t.Errorf("default policy %+v", pol)
		}
	}
	if own, _ := p.Get("iothubowner"); !own.Rights.Has(auth.RegistryWrite | auth.ServiceConnect | auth.DeviceConnect) {
		t.Errorf("iothubowner rights %v", own.Rights)
	}
	if err := p.Set(ctx, auth.Policy{KeyName: "gateway", PrimaryKey: policyKey, Rights: auth.DeviceConnect}); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, "service"); err != nil {
		t.Fatal(err)
	}
	// Reopen over the same store: the same policies, keys included.
	again := newPolicies(t, kv)
	if a, b := again.List(), p.List(); len(a) != len(b) || a[0] != b[0] {
		t.Errorf("after reopen %+v\nwant %+v", a, b)
	}
	if gw, ok := again.Get("gateway"); !ok || gw.PrimaryKey != policyKey || gw.SecondaryKey == "" {
		t.Errorf("gateway after reopen: %+v %v", gw, ok)
	}
	if _, ok := again.Get("service"); ok {
		t.Error("deleted policy came back")
	}
	for _, tc := range []struct {
		name string
		bad  auth.Policy
	}{
		{"empty key name", auth.Policy{KeyName: ""}},
		{"slash in key name", auth.Policy{KeyName: "a/b"}},
		{"primary key too short", auth.Policy{KeyName: "k", PrimaryKey: "c2hvcnQ="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := p.Set(ctx, tc.bad); !errors.Is(err, hubkit.ErrArgumentInvalid) {
				t.Errorf("Set(%+v) = %v, want ArgumentInvalid", tc.bad, err)
			}
		})
	}
}
