package mqtt

import (
	"strings"
	"testing"
)

func TestParseUsername(t *testing.T) {
	tests := []struct {
		in                          string
		host, device, module, model string
		ok                          bool
	}{
		{"h/d/?api-version=2021-04-12", "h", "d", "", "", true},
		{"h/d/m/?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1&DeviceClientType=x%20y", "h", "d", "m", "dtmi:com:example:Thermostat;1", true},
		{"h/d/api-version=2016-11-14&DeviceClientType=c", "h", "d", "", "", true},
		{"h/d/?model-id=a&model-id=b&api-version=1", "h", "d", "", "a", true},
		{"h/d/", "", "", "", "", false},
		{"h/d/?DeviceClientType=c", "", "", "", "", false},
		{"d/?api-version=1", "", "", "", "", false},
		{"h/d/m/x/?api-version=1", "", "", "", "", false},
		{"h/d/?api-version=1&model-id=%zz", "", "", "", "", false},
	}
	for _, tt := range tests {
		u, err := parseUsername(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("parseUsername(%q) error %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && (u.host != tt.host || u.device != tt.device || u.module != tt.module || u.modelID != tt.model) {
			t.Errorf("parseUsername(%q) = %+v", tt.in, u)
		}
	}
}

func TestSameHost(t *testing.T) {
	tests := []struct {
		got  string
		want bool
	}{
		{"hub.example", true},
		{"HUB.Example", true},
		{"hub.example:8883", true},
		{"Hub.Example:443", true},
		{"hub.example:", false},
		{"hub.example:88a3", false},
		{"hub.example:8883:1", false},
		{"other.example:8883", false},
		{"hub.example.evil", false},
	}
	for _, tt := range tests {
		if got := sameHost(tt.got, "hub.example"); got != tt.want {
			t.Errorf("sameHost(%q, hub.example) = %v, want %v", tt.got, got, tt.want)
		}
	}
}

func TestClassifyTopic(t *testing.T) {
	tests := []struct {
		topic, device, module string
		kind                  int
		bag                   string
	}{
		{"devices/d/messages/events", "d", "", topicTelemetry, ""},
		{"devices/d/messages/events/a=1&b", "d", "", topicTelemetry, "a=1&b"},
		{"devices/d/messages/events/a=1/", "d", "", topicTelemetry, "a=1"},
		{"devices/d/modules/m/messages/events/", "d", "m", topicTelemetry, ""},
		{"devices/d/messages/events/a/b", "d", "", topicOther, ""},
		{"devices/d/messages/eventsX", "d", "", topicOther, ""},
		{"devices/dd/messages/events/", "d", "", topicOther, ""},
		{"devices/d/messages/events/", "d", "m", topicOther, ""},
		{"$iothub/twin/GET/?$rid=1", "d", "", topicIgnored, ""},
		{"$iothub/methods/res/200/?$rid=1", "d", "", topicIgnored, ""},
		{"$iothub/twin/res/200", "d", "", topicOther, ""},
	}
	for _, tt := range tests {
		kind, bag := classifyTopic(tt.topic, tt.device, tt.module)
		if kind != tt.kind || bag != tt.bag {
			t.Errorf("classifyTopic(%q, %q, %q) = %d %q, want %d %q", tt.topic, tt.device, tt.module, kind, bag, tt.kind, tt.bag)
		}
	}
}

// FuzzNames checks that the CONNECT and topic parsers never panic and that
// a telemetry bag never contains a '/'.
func FuzzNames(f *testing.F) {
	f.Add("h/d/?api-version=1&model-id=x", "d/m", "devices/d/messages/events/a=1/")
	f.Add("h/d/api-version=1", "d", "$iothub/twin/GET/?$rid=1")
	f.Fuzz(func(t *testing.T, user, clientID, topic string) {
		_, _ = parseUsername(user)
		d, m, ok := splitClientID(clientID)
		if ok && (d == "" || strings.Contains(m, "/")) {
			t.Fatalf("splitClientID(%q) = %q %q", clientID, d, m)
		}
		if kind, bag := classifyTopic(topic, d, m); kind == topicTelemetry && strings.Contains(bag, "/") {
			t.Fatalf("bag %q of %q has a slash", bag, topic)
		}
		classifyFilter(topic, d, m)
	})
}
