package service_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
)

func TestModules(t *testing.T) {
	e := newEnv(t)
	const rw, ro = "registryReadWrite", "registryRead"
	e.do(t, rw, "PUT", "/devices/d1/modules/m1", []byte(`{}`)).wantError(t, hubkit.ErrDeviceNotFound)
	if r := e.do(t, rw, "PUT", "/devices/d1", []byte(`{}`)); r.status != 200 {
		t.Fatalf("create device: %d %s", r.status, r.body)
	}
	r := e.do(t, rw, "PUT", "/devices/d1/modules/m1", []byte(`{"moduleId":"m1","managedBy":"IotEdge"}`))
	var m auth.Module
	if err := json.Unmarshal(r.body, &m); r.status != 200 || err != nil || m.DeviceID != "d1" || m.ModuleID != "m1" || m.ManagedBy != "IotEdge" ||
		m.GenerationID == "" || m.Authentication.SymmetricKey.PrimaryKey == "" || r.header.Get("ETag") != `"`+m.ETag+`"` {
		t.Fatalf("create module: %d %s, ETag %s (%v)", r.status, r.body, r.header.Get("ETag"), err)
	}
	e.do(t, rw, "PUT", "/devices/d1/modules/m1", []byte(`{}`)).wantError(t, auth.ErrModuleAlreadyExists)
	e.do(t, rw, "PUT", "/devices/d1/modules/m1", []byte(`{"moduleId":"m2"}`)).wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, rw, "PUT", "/devices/d1/modules/m1", []byte(`{"deviceId":"d2"}`)).wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, rw, "PUT", "/devices/d1/modules/m1", []byte(`{"moduleId":`)).wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, ro, "PUT", "/devices/d1/modules/m9", []byte(`{}`)).wantError(t, hubkit.ErrUnauthorized)

	thumb := strings.Repeat("ab", 20)
	upd := []byte(`{"authentication":{"type":"selfSigned","x509Thumbprint":{"primaryThumbprint":"` + thumb + `"}}}`)
	e.do(t, rw, "PUT", "/devices/d1/modules/m1", upd, "If-Match", `"nope"`).wantError(t, hubkit.ErrPreconditionFailed)
	e.do(t, rw, "PUT", "/devices/d1/modules/ghost", upd, "If-Match", "*").wantError(t, auth.ErrModuleNotFound)
	r = e.do(t, rw, "PUT", "/devices/d1/modules/m1", upd, "If-Match", `"`+m.ETag+`"`)
	var u auth.Module
	if err := json.Unmarshal(r.body, &u); r.status != 200 || err != nil || u.ETag == m.ETag || u.GenerationID != m.GenerationID ||
		u.Authentication.Type != auth.AuthSelfSigned || u.Authentication.X509Thumbprint.PrimaryThumbprint != thumb || r.header.Get("ETag") != `"`+u.ETag+`"` {
		t.Fatalf("update module: %d %s (%v)", r.status, r.body, err)
	}

	r = e.do(t, ro, "GET", "/devices/d1/modules/m1", nil)
	var g auth.Module
	if err := json.Unmarshal(r.body, &g); r.status != 200 || err != nil || !reflect.DeepEqual(g, u) || r.header.Get("ETag") != `"`+u.ETag+`"` {
		t.Fatalf("get module: %d %s (%v), want %+v", r.status, r.body, err, u)
	}
	if r := e.do(t, rw, "PUT", "/devices/d1/modules/m0", []byte(`{}`)); r.status != 200 {
		t.Fatalf("create m0: %d %s", r.status, r.body)
	}
	r = e.do(t, ro, "GET", "/devices/d1/modules", nil)
	var list []auth.Module
	if err := json.Unmarshal(r.body, &list); r.status != 200 || err != nil || len(list) != 2 || list[0].ModuleID != "m0" || list[1].ModuleID != "m1" {
		t.Fatalf("list modules: %d %s (%v)", r.status, r.body, err)
	}
	e.do(t, ro, "GET", "/devices/d1/modules/ghost", nil).wantError(t, auth.ErrModuleNotFound)
	e.do(t, ro, "GET", "/devices/ghost/modules", nil).wantError(t, hubkit.ErrDeviceNotFound)

	e.do(t, rw, "DELETE", "/devices/d1/modules/m1", nil, "If-Match", `"nope"`).wantError(t, hubkit.ErrPreconditionFailed)
	e.do(t, ro, "DELETE", "/devices/d1/modules/m1", nil).wantError(t, hubkit.ErrUnauthorized)
	if r := e.do(t, rw, "DELETE", "/devices/d1/modules/m1", nil, "If-Match", `"`+u.ETag+`"`); r.status != 204 {
		t.Fatalf("delete module: %d %s", r.status, r.body)
	}
	e.do(t, ro, "GET", "/devices/d1/modules/m1", nil).wantError(t, auth.ErrModuleNotFound)
	if r := e.do(t, rw, "DELETE", "/devices/d1/modules/m0", nil); r.status != 204 {
		t.Fatalf("delete m0 without If-Match: %d %s", r.status, r.body)
	}
	if r := e.do(t, ro, "GET", "/devices/d1/modules", nil); r.status != 200 || string(r.body) != "[]" {
		t.Fatalf("list of no modules: %d %s", r.status, r.body)
	}
}

func TestDeviceListContinuation(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("dev-%02d", i)
		want = append(want, id)
		if r := e.do(t, "registryReadWrite", "PUT", "/devices/"+id, []byte(`{}`)); r.status != 200 {
			t.Fatalf("create %s: %d %s", id, r.status, r.body)
		}
	}
	var got []string
	var pages []int
	token := ""
	for range 10 { // 3 pages are needed; more is a loop
		var hdr []string
		if token != "" {
			hdr = []string{"x-ms-continuation", token}
		}
		r := e.do(t, "registryRead", "GET", "/devices?top=10", nil, hdr...)
		var page []auth.Device
		if err := json.Unmarshal(r.body, &page); r.status != 200 || err != nil {
			t.Fatalf("page %d: %d %s (%v)", len(pages), r.status, r.body, err)
		}
		pages = append(pages, len(page))
		for _, d := range page {
			got = append(got, d.DeviceID)
		}
		if token = r.header.Get("x-ms-continuation"); token == "" {
			break
		}
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(pages, []int{10, 10, 5}) {
		t.Errorf("paged listing: pages of %v devices %v\nwant pages of [10 10 5] devices %v", pages, got, want)
	}
	if r := e.do(t, "registryRead", "GET", "/devices", nil); r.status != 200 || r.header.Get("x-ms-continuation") != "" {
		t.Errorf("a listing of all devices: %d, continuation %q", r.status, r.header.Get("x-ms-continuation"))
	}
	e.do(t, "registryRead", "GET", "/devices?top=10", nil, "x-ms-continuation", "not base64!").wantError(t, hubkit.ErrArgumentInvalid)
}
