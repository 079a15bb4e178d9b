package brokertest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/auth"
)

// Devices is an in-memory [auth.Authenticator] for broker tests: it knows
// device (and module) ids and their base64 symmetric keys, and accepts a
// connection whose password is a SAS token for that identity, signed with
// its key and not expired. Its zero value knows no device. It is safe for
// concurrent use.
type Devices struct {
	mu   sync.RWMutex      // guards keys
	keys map[string]string // "device" or "device/module" -> base64 key
}

// Add registers an identity (moduleID empty for a device) with its base64 key.
func (d *Devices) Add(deviceID, moduleID, key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys == nil {
		d.keys = make(map[string]string)
	}
	d.keys[identityKey(deviceID, moduleID)] = key
}

func identityKey(deviceID, moduleID string) string {
	if moduleID == "" {
		return deviceID
	}
	return deviceID + "/" + moduleID
}

// Authenticate checks c.Password as a SAS token for the identity c claims.
// Failures wrap auth.ErrDenied.
func (d *Devices) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	d.mu.RLock()
	key, ok := d.keys[identityKey(c.DeviceID, c.ModuleID)]
	d.mu.RUnlock()
	if !ok {
		return auth.Identity{}, fmt.Errorf("%w: unknown identity %q", auth.ErrDenied, identityKey(c.DeviceID, c.ModuleID))
	}
	fields, ok := strings.CutPrefix(c.Password, "SharedAccessSignature ")
	if !ok {
		return auth.Identity{}, fmt.Errorf("%w: password is not a SAS token", auth.ErrDenied)
	}
	var sr, sig, se string
	for _, f := range strings.Split(fields, "&") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "sr":
			sr = v
		case "sig":
			sig = v
		case "se":
			se = v
		}
	}
	exp, err := strconv.ParseInt(se, 10, 64)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("%w: SAS token has no valid se", auth.ErrDenied)
	}
	if time.Now().Unix() >= exp {
		return auth.Identity{}, fmt.Errorf("%w: SAS token expired", auth.ErrDenied)
	}
	res, err := url.QueryUnescape(sr)
	if err != nil || !strings.HasSuffix(strings.ToLower(res), "/devices/"+strings.ToLower(identityPath(c.DeviceID, c.ModuleID))) {
		return auth.Identity{}, fmt.Errorf("%w: SAS token is for another resource", auth.ErrDenied)
	}
	got, err := url.QueryUnescape(sig)
	if err != nil || !hmac.Equal([]byte(got), []byte(sign(key, sr, se))) {
		return auth.Identity{}, fmt.Errorf("%w: SAS signature does not match", auth.ErrDenied)
	}
	scope := "device"
	if c.ModuleID != "" {
		scope = "module"
	}
	return auth.Identity{
		DeviceID:     c.DeviceID,
		ModuleID:     c.ModuleID,
		Method:       auth.AuthMethod{Scope: scope, Type: "sas", Issuer: "iothub"},
		GenerationID: "1",
		ExpiresAt:    exp,
	}, nil
}

func identityPath(deviceID, moduleID string) string {
	if moduleID == "" {
		return deviceID
	}
	return deviceID + "/modules/" + moduleID
}

// sign returns the base64 HMAC-SHA256 of "sr\nse" keyed by the decoded key.
func sign(key, sr, se string) string {
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return ""
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(sr + "\n" + se))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Token returns a SAS token for the device (or module) at host, signed with
// key and valid until expiry, as the Azure IoT device SDKs mint them.
func Token(host, deviceID, moduleID, key string, expiry time.Time) string {
	sr := url.QueryEscape(host + "/devices/" + identityPath(deviceID, moduleID))
	se := strconv.FormatInt(expiry.Unix(), 10)
	return "SharedAccessSignature sr=" + sr + "&sig=" + url.QueryEscape(sign(key, sr, se)) + "&se=" + se
}
