package auth_test

import (
	"testing"

	"github.com/hubkit/hubkit/auth"
)

func TestMayPublish(t *testing.T) {
	dev := auth.Identity{DeviceID: "dev-1"}
	mod := auth.Identity{DeviceID: "dev-1", ModuleID: "m1"}
	for _, tc := range []struct {
		id    auth.Identity
		topic string
		want  bool
	}{
		{dev, "devices/dev-1/messages/events", true},
		{dev, "devices/dev-1/messages/events/", true},
		{dev, "devices/dev-1/messages/events/a=1&%24.ct=application%2Fjson", true},
		{dev, "devices/dev-1/messages/events/a=1/", true},
		{dev, "$iothub/twin/GET/?$rid=1", true},
		{dev, "$iothub/twin/PATCH/properties/reported/?$rid=2", true},
		{dev, "$iothub/methods/res/200/?$rid=3", true},
		{dev, "$iothub/methods/res/ok/?$rid=3", false},
		{dev, "$iothub/methods/res/200", false},
		{dev, "devices/dev-2/messages/events/", false},
		{dev, "devices/DEV-1/messages/events/", false},
		{dev, "devices/dev-10/messages/events/", false},
		{dev, "devices/dev-1/messages/eventsX", false},
		{dev, "devices/dev-1/messages/devicebound/", false},
		{dev, "devices/dev-1/modules/m1/messages/events/", false},
		{dev, "$iothub/twin/PATCH/properties/desired/?$rid=1", false},
		{dev, "", false},
		{mod, "devices/dev-1/modules/m1/messages/events/", true},
		{mod, "devices/dev-1/modules/m2/messages/events/", false},
		{mod, "devices/dev-1/messages/events/", false},
		{mod, "$iothub/twin/GET/?$rid=1", true},
	} {
		if got := tc.id.MayPublish(tc.topic); got != tc.want {
			t.Errorf("%s/%s MayPublish(%q) = %v, want %v", tc.id.DeviceID, tc.id.ModuleID, tc.topic, got, tc.want)
		}
	}
}

func TestMaySubscribe(t *testing.T) {
	dev := auth.Identity{DeviceID: "dev-1"}
	mod := auth.Identity{DeviceID: "dev-1", ModuleID: "m1"}
	for _, tc := range []struct {
		id     auth.Identity
		filter string
		want   bool
	}{
		{dev, "devices/dev-1/messages/devicebound/#", true},
		{dev, "$iothub/twin/res/#", true},
		{dev, "$iothub/twin/PATCH/properties/desired/#", true},
		{dev, "$iothub/methods/POST/#", true},
		{dev, "devices/dev-2/messages/devicebound/#", false},
		{dev, "devices/+/messages/devicebound/#", false},
		{dev, "devices/dev-1/messages/devicebound/+", false},
		{dev, "#", false},
		{dev, "devices/dev-1/messages/events/#", false},
		{mod, "devices/dev-1/messages/devicebound/#", false}, // modules cannot receive C2D
		{mod, "devices/dev-1/modules/m1/messages/devicebound/#", false},
		{mod, "$iothub/methods/POST/#", true},
	} {
		if got := tc.id.MaySubscribe(tc.filter); got != tc.want {
			t.Errorf("%s/%s MaySubscribe(%q) = %v, want %v", tc.id.DeviceID, tc.id.ModuleID, tc.filter, got, tc.want)
		}
	}
}

func TestMayUseHTTPS(t *testing.T) {
	dev := auth.Identity{DeviceID: "dev 1"}
	mod := auth.Identity{DeviceID: "dev 1", ModuleID: "m1"}
	for _, tc := range []struct {
		id   auth.Identity
		path string
		want bool
	}{
		{dev, "/devices/dev%201/messages/events", true},
		{dev, "/devices/dev%201/messages/deviceBound", true},
		{dev, "/devices/dev%201/messages/deviceBound/abc/abandon", true},
		{dev, "/devices/dev%201/files", true},
		{dev, "/Devices/dev%201/Messages/events", true},
		{dev, "/devices/dev%202/messages/events", false},
		{dev, "/devices/DEV%201/messages/events", false},
		{dev, "/devices/dev%201", false},
		{dev, "/devices/dev%201/", false},
		{dev, "/devices/dev%201/registry", false},
		{dev, "/devices/dev%zz/messages/events", false},
		{dev, "/devices/dev%201/modules/m1/messages/events", false},
		{mod, "/devices/dev%201/modules/m1/messages/events", true},
		{mod, "/devices/dev%201/messages/events", false},
		{dev, "", false},
	} {
		if got := tc.id.MayUseHTTPS(tc.path); got != tc.want {
			t.Errorf("%s/%s MayUseHTTPS(%q) = %v, want %v", tc.id.DeviceID, tc.id.ModuleID, tc.path, got, tc.want)
		}
	}
}
