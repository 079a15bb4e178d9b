package service

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
)

// maxDeviceJSON bounds a device JSON body.
const maxDeviceJSON = 64 << 10

// ifMatch returns the If-Match header without the quotes of an ETag.
func ifMatch(r *http.Request) string {
	return unquote(strings.TrimPrefix(strings.TrimSpace(r.Header.Get("If-Match")), "W/"))
}

// unquote returns an ETag's value without its quotes; a value sent
// without them comes back as it is.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

func writeDevice(w http.ResponseWriter, d auth.Device) error {
	w.Header().Set("ETag", `"`+d.ETag+`"`)
	return writeJSON(w, http.StatusOK, d)
}

func (s *Handler) putDevice(w http.ResponseWriter, r *http.Request, args []string) error {
	var d auth.Device
	if err := readJSON(w, r, maxDeviceJSON, &d); err != nil {
		return err
	}
	switch d.DeviceID {
	case "":
		d.DeviceID = args[0]
	case args[0]:
	default:
		return fmt.Errorf("%w: deviceId %q in the body is not %q of the path", hubkit.ErrArgumentInvalid, d.DeviceID, args[0])
	}
	var err error
	if m := ifMatch(r); m != "" {
		d, err = s.h.UpdateDevice(r.Context(), d, m)
	} else {
		d, err = s.h.CreateDevice(r.Context(), d)
	}
	if err != nil {
		return err
	}
	return writeDevice(w, d)
}

func (s *Handler) getDevice(w http.ResponseWriter, r *http.Request, args []string) error {
	d, err := s.h.GetDevice(r.Context(), args[0])
	if err != nil {
		return err
	}
	return writeDevice(w, d)
}

func (s *Handler) deleteDevice(w http.ResponseWriter, r *http.Request, args []string) error {
	if err := s.h.DeleteDevice(r.Context(), args[0], ifMatch(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// continuationHeader carries the position of the next page of a device
// listing: the answer sets it when the page is full, and the request for
// the next page sends it back.
const continuationHeader = "x-ms-continuation"

// listDevices answers up to top devices, after the position the
// continuation header gives. The token is the base64url text of the last
// id of the page before, opaque to clients; a full page sets the next
// token, so the last page may be empty when the devices fill whole pages.
func (s *Handler) listDevices(w http.ResponseWriter, r *http.Request, _ []string) error {
	top := auth.MaxListLimit
	if v := r.URL.Query().Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > auth.MaxListLimit {
			return fmt.Errorf("%w: top must be 1 to %d", hubkit.ErrArgumentInvalid, auth.MaxListLimit)
		}
		top = n
	}
	after := ""
	if v := r.Header.Get(continuationHeader); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || !utf8.Valid(b) {
			return fmt.Errorf("%w: %s is not a token this hub gave", hubkit.ErrArgumentInvalid, continuationHeader)
		}
		after = string(b)
	}
	ds, err := s.h.Devices(r.Context(), after, top)
	if err != nil {
		return err
	}
	if len(ds) == top {
		w.Header().Set(continuationHeader, base64.RawURLEncoding.EncodeToString([]byte(ds[len(ds)-1].DeviceID)))
	}
	return writeJSON(w, http.StatusOK, ds)
}

// moduleRegistry is what the module routes need of the hub's registry;
// *auth.Registry has it.
type moduleRegistry interface {
	GetModule(ctx context.Context, deviceID, moduleID string) (auth.Module, error)
	CreateModule(ctx context.Context, m auth.Module) (auth.Module, error)
	UpdateModule(ctx context.Context, m auth.Module, ifMatch string) (auth.Module, error)
	DeleteModule(ctx context.Context, deviceID, moduleID, ifMatch string) error
	ListModules(ctx context.Context, deviceID string) ([]auth.Module, error)
}

// errNoModules answers the module routes when the hub's registry keeps
// no modules.
var errNoModules = &hubkit.Error{Code: 501000, Name: "NotImplemented"}

// modules returns the hub's registry as a moduleRegistry, once the hub
// runs.
func (s *Handler) modules() (moduleRegistry, error) {
	if err := s.h.Healthy(); err != nil {
		return nil, err
	}
	m, ok := s.h.Registry().(moduleRegistry)
	if !ok {
		return nil, fmt.Errorf("%w: the hub's registry keeps no modules", errNoModules)
	}
	return m, nil
}

func writeModule(w http.ResponseWriter, m auth.Module) error {
	w.Header().Set("ETag", `"`+m.ETag+`"`)
	return writeJSON(w, http.StatusOK, m)
}

func (s *Handler) putModule(w http.ResponseWriter, r *http.Request, args []string) error {
	reg, err := s.modules()
	if err != nil {
		return err
	}
	var m auth.Module
	if err := readJSON(w, r, maxDeviceJSON, &m); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		body *string
		path string
	}{{"deviceId", &m.DeviceID, args[0]}, {"moduleId", &m.ModuleID, args[1]}} {
		switch *f.body {
		case "":
			*f.body = f.path
		case f.path:
		default:
			return fmt.Errorf("%w: %s %q in the body is not %q of the path", hubkit.ErrArgumentInvalid, f.name, *f.body, f.path)
		}
	}
	if v := ifMatch(r); v != "" {
		m, err = reg.UpdateModule(r.Context(), m, v)
	} else {
		m, err = reg.CreateModule(r.Context(), m)
	}
	if err != nil {
		return err
	}
	return writeModule(w, m)
}

func (s *Handler) getModule(w http.ResponseWriter, r *http.Request, args []string) error {
	reg, err := s.modules()
	if err != nil {
		return err
	}
	m, err := reg.GetModule(r.Context(), args[0], args[1])
	if err != nil {
		return err
	}
	return writeModule(w, m)
}

func (s *Handler) deleteModule(w http.ResponseWriter, r *http.Request, args []string) error {
	reg, err := s.modules()
	if err != nil {
		return err
	}
	if err := reg.DeleteModule(r.Context(), args[0], args[1], ifMatch(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Handler) listModules(w http.ResponseWriter, r *http.Request, args []string) error {
	reg, err := s.modules()
	if err != nil {
		return err
	}
	ms, err := reg.ListModules(r.Context(), args[0])
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []auth.Module{} // [], not null
	}
	return writeJSON(w, http.StatusOK, ms)
}
