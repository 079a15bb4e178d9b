package auth

import (
	"net/url"
	"strings"
)

// MayPublish reports whether the identity may publish an MQTT PUBLISH on
// topic: its own telemetry topic (devices/{deviceId}/messages/events, or
// the module's, with or without a trailing slash and property bag), twin
// GET and reported-properties PATCH, and method responses. The broker
// closes the connection otherwise. Ids in topics are case-sensitive.
func (id Identity) MayPublish(topic string) bool {
	if rest, ok := strings.CutPrefix(topic, id.topicPrefix()+"messages/events"); ok {
		return rest == "" || rest[0] == '/'
	}
	if rest, ok := strings.CutPrefix(topic, "$iothub/methods/res/"); ok {
		status, q, _ := strings.Cut(rest, "/")
		return isDigits(status) && strings.HasPrefix(q, "?")
	}
	return strings.HasPrefix(topic, "$iothub/twin/GET/?") ||
		strings.HasPrefix(topic, "$iothub/twin/PATCH/properties/reported/?")
}

// MaySubscribe reports whether the identity may subscribe to the MQTT
// topic filter: its cloud-to-device topic (devices only), twin responses,
// desired-property patches and direct methods, each ending in "/#".
func (id Identity) MaySubscribe(filter string) bool {
	switch filter {
	case "$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#":
		return true
	}
	return id.ModuleID == "" && filter == id.topicPrefix()+"messages/devicebound/#"
}

// topicPrefix returns devices/{deviceId}/ or devices/{deviceId}/modules/{moduleId}/.
func (id Identity) topicPrefix() string {
	if id.ModuleID != "" {
		return "devices/" + id.DeviceID + "/modules/" + id.ModuleID + "/"
	}
	return "devices/" + id.DeviceID + "/"
}

// MayUseHTTPS reports whether the identity may call the HTTPS device API
// at path (the request path, still escaped, without the query):
// /devices/{deviceId}[/modules/{moduleId}]/ followed by messages, files,
// twin or methods. Ids are compared after unescaping, case-sensitively;
// fixed segments case-insensitively.
func (id Identity) MayUseHTTPS(path string) bool {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	want := []string{"devices", id.DeviceID}
	if id.ModuleID != "" {
		want = append(want, "modules", id.ModuleID)
	}
	if len(segs) <= len(want) {
		return false
	}
	for i, w := range want {
		s, err := url.PathUnescape(segs[i])
		if err != nil || (i%2 == 0 && !strings.EqualFold(s, w)) || (i%2 == 1 && s != w) {
			return false
		}
	}
	switch strings.ToLower(segs[len(want)]) {
	case "messages", "files", "twin", "methods":
		return true
	}
	return false
}
