package auth

import "testing"

func TestCovers(t *testing.T) {
	const host = "myhub.azure-devices.net"
	for _, tc := range []struct {
		sr, device, module string
		want               bool
	}{
		{"myhub.azure-devices.net%2Fdevices%2Fdev-1", "dev-1", "", true},
		{"myhub.azure-devices.net/devices/dev-1", "dev-1", "", true},            // not encoded
		{"myhub.azure-devices.net%2fdevices%2fdev-1", "dev-1", "", true},        // lower-case hex
		{"MyHub.Azure-Devices.NET%2FDevices%2FDEV-1", "dev-1", "", true},        // case-insensitive
		{"myhub.azure-devices.net%2Fdevices%2Fdev-1%2F", "dev-1", "", true},     // trailing slash
		{"myhub.azure-devices.net%3A8883%2Fdevices%2Fdev-1", "dev-1", "", true}, // port
		{"myhub.azure-devices.net", "dev-1", "", true},                          // hub-level
		{"myhub.azure-devices.net%2Fdevices", "dev-1", "", true},                // all devices
		{"myhub.azure-devices.net%2Fdevices%2Fdev-1", "dev-1", "m1", true},      // device covers its modules
		{"myhub.azure-devices.net%2Fdevices%2Fdev-1%2Fmodules%2Fm1", "dev-1", "m1", true},
		{"myhub.azure-devices.net%2Fdevices%2Fdev-1%2Fmodules%2Fm1", "dev-1", "", false}, // module does not cover device
		{"myhub.azure-devices.net%2Fdevices%2Fdev-1%2Fmodules%2Fm2", "dev-1", "m1", false},
		{"myhub.azure-devices.net%2Fdevices%2Fdev-10", "dev-1", "", false}, // segment, not string prefix
		{"myhub.azure-devices.net%2Fdevices%2Fdev", "dev-1", "", false},
		{"myhub.azure-devices.net%2Fdevices%2Fdev-2", "dev-1", "", false},
		{"otherhub.azure-devices.net%2Fdevices%2Fdev-1", "dev-1", "", false},
		{"myhub.azure-devices.net.evil%2Fdevices%2Fdev-1", "dev-1", "", false},
		{"myhub.azure-devices.net%3Ax%2Fdevices%2Fdev-1", "dev-1", "", false},
		{"myhub.azure-devices.net%2Fdevice%2Fdev-1", "dev-1", "", false},
		{"myhub.azure-devices.net%2F%2Fdevices%2Fdev-1", "dev-1", "", false},
		{"myhub.azure-devices.net%2Fdevices%2Fdev-1%2Fmessages", "dev-1", "", false},
		{"myhub.azure-devices.net%2Fdevices%2Fdev-1%zz", "dev-1", "", false}, // bad escape
		{"myhub.azure-devices.net", "", "", true},                            // hub-level asked
		{"myhub.azure-devices.net%2F", "", "", true},
		{"myhub.azure-devices.net%2Fdevices", "", "", false},
	} {
		if got := covers(tc.sr, host, tc.device, tc.module); got != tc.want {
			t.Errorf("covers(%q, %q, %q) = %v, want %v", tc.sr, tc.device, tc.module, got, tc.want)
		}
	}
}
