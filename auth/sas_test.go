package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/auth"
)

// Vectors computed with Node.js using the Azure IoT SDK's algorithm
// (azure-iot-common shared_access_signature.js): sr =
// encodeURIComponent(resource) with ! ' ( ) * also escaped, sig =
// base64(HMAC-SHA256(base64-decoded key, sr + "\n" + se)) encoded the same
// way, fields in the order sr, sig, skn, se.
const (
	deviceKey = "aHVia2l0LWRldmljZS1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="
	policyKey = "aHVia2l0LXBvbGljeS1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="
	moduleKey = "aHVia2l0LW1vZHVsZS1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="
	vectorSE  = 1795637597
)

var vectors = []struct {
	name, resource, key, skn, token string
}{
	{"device", "localhost/devices/dev-1", deviceKey, "",
		"SharedAccessSignature sr=localhost%2Fdevices%2Fdev-1&sig=AMKH4cO6an%2ByBzY3imit5dYz%2B%2B7LhiJWovV%2BU%2BpMcU0%3D&se=1795637597"},
	{"device id with strict escapes", "myhub.azure-devices.net/devices/d!(x)*'", deviceKey, "",
		"SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fd%21%28x%29%2A%27&sig=H12FzO6BoF%2FguCNe0EhOYTQgayN8QhBN6wJ8LyPbgws%3D&se=1795637597"},
	{"policy", "myhub.azure-devices.net", policyKey, "iothubowner",
		"SharedAccessSignature sr=myhub.azure-devices.net&sig=2tUnfM49sF6N4WLGWCT6nZztE9HY1CZ7gKXeAvC8t9A%3D&skn=iothubowner&se=1795637597"},
	{"device policy for a device", "myhub.azure-devices.net/devices/dev-1", policyKey, "device",
		"SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-1&sig=3V0lNQ1Ey6wXj0UgQc7LZ7rRpFymQUhUNQwIMoFKGoY%3D&skn=device&se=1795637597"},
	{"module", "myhub.azure-devices.net/devices/dev-1/modules/mod-1", moduleKey, "",
		"SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-1%2Fmodules%2Fmod-1&sig=CjgzqyC1V0sbv7ujYlkJbGeCawh0FaquveXyEnP7yJA%3D&se=1795637597"},
}

func TestSASVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			got, err := auth.NewSAS(v.resource, v.key, v.skn, time.Unix(vectorSE, 0))
			if err != nil {
				t.Fatal(err)
			}
			if got != v.token {
				t.Errorf("NewSAS =\n%s\nwant the SDK's\n%s", got, v.token)
			}
			s, err := auth.ParseSAS(v.token)
			if err != nil {
				t.Fatal(err)
			}
			if s.Expiry != vectorSE || s.KeyName != v.skn || !strings.HasPrefix(v.token, "SharedAccessSignature sr="+s.Resource+"&") {
				t.Errorf("ParseSAS = %+v", s)
			}
			if !s.Verify(v.key) {
				t.Error("Verify with the signing key = false")
			}
			if s.Verify(deviceKey+"x") || (v.key != moduleKey && s.Verify(moduleKey)) {
				t.Error("Verify with another key = true")
			}
			if s.String() != v.token {
				t.Errorf("String =\n%s\nwant\n%s", s.String(), v.token)
			}
		})
	}
}

func TestParseSASFieldsAnyOrderAnyCase(t *testing.T) {
	// The same device token with its fields reordered and renamed in
	// upper case, and an extra field: the signature still covers sr and se.
	tok := "SharedAccessSignature SE=1795637597&foo=bar&SIG=AMKH4cO6an%2ByBzY3imit5dYz%2B%2B7LhiJWovV%2BU%2BpMcU0%3D&Sr=localhost%2Fdevices%2Fdev-1"
	s, err := auth.ParseSAS(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Verify(deviceKey) {
		t.Error("reordered token does not verify")
	}
	// A leading zero in se is signed as sent.
	lz, err := auth.ParseSAS("SharedAccessSignature sr=a&sig=AMKH4cO6an%2ByBzY3imit5dYz%2B%2B7LhiJWovV%2BU%2BpMcU0%3D&se=01")
	if err != nil || lz.Expiry != 1 || !strings.HasSuffix(lz.String(), "&se=01") {
		t.Errorf("se=01: %+v, %v", lz, err)
	}
}

func TestParseSASErrors(t *testing.T) {
	const sig = "AMKH4cO6an%2ByBzY3imit5dYz%2B%2B7LhiJWovV%2BU%2BpMcU0%3D"
	for _, tc := range []struct{ name, token, want string }{
		{"empty", "", "does not start"},
		{"wrong prefix", "sharedaccesssignature sr=a&sig=" + sig + "&se=1", "does not start"},
		{"two spaces", "SharedAccessSignature  sr=a&sig=" + sig + "&se=1", "no sr"},
		{"no sr", "SharedAccessSignature sig=" + sig + "&se=1", "no sr"},
		{"empty sr", "SharedAccessSignature sr=&sig=" + sig + "&se=1", "empty sr"},
		{"no sig", "SharedAccessSignature sr=a&se=1", "no sig"},
		{"no se", "SharedAccessSignature sr=a&sig=" + sig, "no se"},
		{"two sr", "SharedAccessSignature sr=a&sr=b&sig=" + sig + "&se=1", "two sr"},
		{"two se", "SharedAccessSignature sr=a&sig=" + sig + "&se=1&SE=2", "two se"},
		{"field without =", "SharedAccessSignature sr=a&sig=" + sig + "&se=1&x", "has no '='"},
		{"sig not base64", "SharedAccessSignature sr=a&sig=%%%&se=1", "not a base64"},
		{"sig too short", "SharedAccessSignature sr=a&sig=AAAA&se=1", "not a base64"},
		{"sig too long", "SharedAccessSignature sr=a&sig=" + strings.Repeat("A", 100) + "&se=1", "not a base64"},
		{"se not a number", "SharedAccessSignature sr=a&sig=" + sig + "&se=soon", "not a number"},
		{"se negative", "SharedAccessSignature sr=a&sig=" + sig + "&se=-5", "not a number"},
		{"se plus", "SharedAccessSignature sr=a&sig=" + sig + "&se=+5", "not a number"},
		{"se overflows", "SharedAccessSignature sr=a&sig=" + sig + "&se=9999999999999999999", "not a number"},
		{"empty skn", "SharedAccessSignature sr=a&sig=" + sig + "&se=1&skn=", "skn"},
		{"too long", "SharedAccessSignature sr=" + strings.Repeat("a", auth.MaxSASLength) + "&sig=" + sig + "&se=1", "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.ParseSAS(tc.token)
			if !errors.Is(err, auth.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseSAS = %v, want ErrMalformed mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSASExpired(t *testing.T) {
	s, err := auth.ParseSAS(vectors[0].token)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   int64
		want bool
	}{
		{vectorSE - 1000, false},
		{vectorSE, false},
		{vectorSE + 300, false}, // within the 5-minute skew
		{vectorSE + 301, true},
	} {
		if got := s.Expired(time.Unix(tc.at, 0)); got != tc.want {
			t.Errorf("Expired(se%+d) = %v, want %v", tc.at-vectorSE, got, tc.want)
		}
	}
}

func TestNewSASBadKey(t *testing.T) {
	for _, key := range []string{"", "not base64!", "QQ"} {
		if _, err := auth.NewSAS("h", key, "", time.Unix(vectorSE, 0)); !errors.Is(err, auth.ErrMalformed) {
			t.Errorf("NewSAS with key %q = %v, want ErrMalformed", key, err)
		}
	}
}
