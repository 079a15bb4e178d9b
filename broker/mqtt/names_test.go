package mqtt

import (
	"strings"
	"testing"
)

func TestParseUsername(t *testing.T) {
	tests := []struct {
		name                        string
		in                          string
		host, device, module, model string
		ok                          bool
	}{
		{"device", "h/d/?api-version=2021-04-12", "h", "d", "", "", true},
		{"module with model id and client type", "h/d/m/?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1&DeviceClientType=x%20y", "h", "d", "m", "dtmi:com:example:Thermostat;1", true},
		{"legacy api-version without question mark", "h/d/api-version=2016-11-14&DeviceClientType=c", "h", "d", "", "", true},
		{"first model id wins", "h/d/?model-id=a&model-id=b&api-version=1", "h", "d", "", "a", true},
		{"no query", "h/d/", "", "", "", "", false},
		{"client type without api-version", "h/d/?DeviceClientType=c", "", "", "", "", false},
		{"too few segments", "d/?api-version=1", "", "", "", "", false},
		{"too many segments", "h/d/m/x/?api-version=1", "", "", "", "", false},
		{"bad escape in model id", "h/d/?api-version=1&model-id=%zz", "", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := parseUsername(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("parseUsername(%q) error %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && (u.host != tt.host || u.device != tt.device || u.module != tt.module || u.modelID != tt.model) {
				t.Errorf("parseUsername(%q) = %+v", tt.in, u)
			}
		})
	}
}

func TestSameHost(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want bool
	}{
		{"same", "hub.example", true},
		{"other case", "HUB.Example", true},
		{"with port", "hub.example:8883", true},
		{"other case with port", "Hub.Example:443", true},
		{"empty port", "hub.example:", false},
		{"port not a number", "hub.example:88a3", false},
		{"two ports", "hub.example:8883:1", false},
		{"another host", "other.example:8883", false},
		{"host as a prefix", "hub.example.evil", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameHost(tt.got, "hub.example"); got != tt.want {
				t.Errorf("sameHost(%q, hub.example) = %v, want %v", tt.got, got, tt.want)
			}
		})
	}
}

func TestClassifyTopic(t *testing.T) {
	tests := []struct {
		name                  string
		topic, device, module string
		kind                  int
		bag                   string
	}{
		{"telemetry", "devices/d/messages/events", "d", "", topicTelemetry, ""},
		{"telemetry with bag", "devices/d/messages/events/a=1&b", "d", "", topicTelemetry, "a=1&b"},
		{"bag with trailing slash", "devices/d/messages/events/a=1/", "d", "", topicTelemetry, "a=1"},
		{"module telemetry", "devices/d/modules/m/messages/events/", "d", "m", topicTelemetry, ""},
		{"bag with a slash", "devices/d/messages/events/a/b", "d", "", topicOther, ""},
		{"events prefix only", "devices/d/messages/eventsX", "d", "", topicOther, ""},
		{"another device", "devices/dd/messages/events/", "d", "", topicOther, ""},
		{"device topic for a module", "devices/d/messages/events/", "d", "m", topicOther, ""},
		{"twin request", "$iothub/twin/GET/?$rid=1", "d", "", topicIgnored, ""},
		{"method response", "$iothub/methods/res/200/?$rid=1", "d", "", topicIgnored, ""},
		{"twin response topic", "$iothub/twin/res/200", "d", "", topicOther, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, bag := classifyTopic(tt.topic, tt.device, tt.module)
			if kind != tt.kind || bag != tt.bag {
				t.Errorf("classifyTopic(%q, %q, %q) = %d %q, want %d %q", tt.topic, tt.device, tt.module, kind, bag, tt.kind, tt.bag)
			}
		})
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
