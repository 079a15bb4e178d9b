package auth_test

import (
	"testing"

	"github.com/hubkit/hubkit/auth"
)

func TestMayPublish(t *testing.T) {
	dev := auth.Identity{DeviceID: "dev-1"}
	mod := auth.Identity{DeviceID: "dev-1", ModuleID: "m1"}
	for _, tc := range []struct {
		name  string
		id    auth.Identity
		topic string
		want  bool
	}{
		{"telemetry", dev, "devices/dev-1/messages/events", true},
		{"telemetry with empty bag", dev, "devices/dev-1/messages/events/", true},
		{"telemetry with property bag", dev, "devices/dev-1/messages/events/a=1&%24.ct=application%2Fjson", true},
		{"telemetry bag with trailing slash", dev, "devices/dev-1/messages/events/a=1/", true},
		{"twin get", dev, "$iothub/twin/GET/?$rid=1", true},
		{"reported properties patch", dev, "$iothub/twin/PATCH/properties/reported/?$rid=2", true},
		{"method response", dev, "$iothub/methods/res/200/?$rid=3", true},
		{"method response with non-numeric status", dev, "$iothub/methods/res/ok/?$rid=3", false},
		{"method response without request id", dev, "$iothub/methods/res/200", false},
		{"another device", dev, "devices/dev-2/messages/events/", false},
		{"device id in another case", dev, "devices/DEV-1/messages/events/", false},
		{"longer device id", dev, "devices/dev-10/messages/events/", false},
		{"events prefix only", dev, "devices/dev-1/messages/eventsX", false},
		{"devicebound topic", dev, "devices/dev-1/messages/devicebound/", false},
		{"module topic for a device", dev, "devices/dev-1/modules/m1/messages/events/", false},
		{"desired properties patch", dev, "$iothub/twin/PATCH/properties/desired/?$rid=1", false},
		{"empty topic", dev, "", false},
		{"module telemetry", mod, "devices/dev-1/modules/m1/messages/events/", true},
		{"another module", mod, "devices/dev-1/modules/m2/messages/events/", false},
		{"device telemetry from a module", mod, "devices/dev-1/messages/events/", false},
		{"module twin get", mod, "$iothub/twin/GET/?$rid=1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.id.MayPublish(tc.topic); got != tc.want {
				t.Errorf("%s/%s MayPublish(%q) = %v, want %v", tc.id.DeviceID, tc.id.ModuleID, tc.topic, got, tc.want)
			}
		})
	}
}

func TestMaySubscribe(t *testing.T) {
	dev := auth.Identity{DeviceID: "dev-1"}
	mod := auth.Identity{DeviceID: "dev-1", ModuleID: "m1"}
	for _, tc := range []struct {
		name   string
		id     auth.Identity
		filter string
		want   bool
	}{
		{"c2d", dev, "devices/dev-1/messages/devicebound/#", true},
		{"twin responses", dev, "$iothub/twin/res/#", true},
		{"desired properties", dev, "$iothub/twin/PATCH/properties/desired/#", true},
		{"method requests", dev, "$iothub/methods/POST/#", true},
		{"another device's c2d", dev, "devices/dev-2/messages/devicebound/#", false},
		{"c2d for any device", dev, "devices/+/messages/devicebound/#", false},
		{"c2d single-level wildcard", dev, "devices/dev-1/messages/devicebound/+", false},
		{"everything", dev, "#", false},
		{"own telemetry", dev, "devices/dev-1/messages/events/#", false},
		{"module subscribing to its device's c2d", mod, "devices/dev-1/messages/devicebound/#", false}, // modules cannot receive C2D
		{"module c2d", mod, "devices/dev-1/modules/m1/messages/devicebound/#", false},
		{"module method requests", mod, "$iothub/methods/POST/#", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.id.MaySubscribe(tc.filter); got != tc.want {
				t.Errorf("%s/%s MaySubscribe(%q) = %v, want %v", tc.id.DeviceID, tc.id.ModuleID, tc.filter, got, tc.want)
			}
		})
	}
}

func TestMayUseHTTPS(t *testing.T) {
	dev := auth.Identity{DeviceID: "dev 1"}
	mod := auth.Identity{DeviceID: "dev 1", ModuleID: "m1"}
	for _, tc := range []struct {
		name string
		id   auth.Identity
		path string
		want bool
	}{
		{"telemetry", dev, "/devices/dev%201/messages/events", true},
		{"c2d receive", dev, "/devices/dev%201/messages/deviceBound", true},
		{"c2d abandon", dev, "/devices/dev%201/messages/deviceBound/abc/abandon", true},
		{"file upload", dev, "/devices/dev%201/files", true},
		{"path in another case", dev, "/Devices/dev%201/Messages/events", true},
		{"another device", dev, "/devices/dev%202/messages/events", false},
		{"device id in another case", dev, "/devices/DEV%201/messages/events", false},
		{"device root", dev, "/devices/dev%201", false},
		{"device root with slash", dev, "/devices/dev%201/", false},
		{"registry", dev, "/devices/dev%201/registry", false},
		{"bad escape", dev, "/devices/dev%zz/messages/events", false},
		{"module path for a device", dev, "/devices/dev%201/modules/m1/messages/events", false},
		{"module telemetry", mod, "/devices/dev%201/modules/m1/messages/events", true},
		{"device path for a module", mod, "/devices/dev%201/messages/events", false},
		{"empty path", dev, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.id.MayUseHTTPS(tc.path); got != tc.want {
				t.Errorf("%s/%s MayUseHTTPS(%q) = %v, want %v", tc.id.DeviceID, tc.id.ModuleID, tc.path, got, tc.want)
			}
		})
	}
}
