package service

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
)

// maxDeviceJSON bounds a device JSON body.
const maxDeviceJSON = 64 << 10

// ifMatch returns the If-Match header without the quotes of an ETag.
func ifMatch(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	v = strings.TrimPrefix(v, "W/")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
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

func (s *Handler) listDevices(w http.ResponseWriter, r *http.Request, _ []string) error {
	top := 0
	if v := r.URL.Query().Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > auth.MaxListLimit {
			return fmt.Errorf("%w: top must be 1 to %d", hubkit.ErrArgumentInvalid, auth.MaxListLimit)
		}
		top = n
	}
	ds, err := s.h.Devices(r.Context(), "", top)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ds)
}
