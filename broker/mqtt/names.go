package mqtt

import (
	"errors"
	"net/url"
	"strings"
)

// username is a parsed CONNECT username:
// {host}/{deviceId}[/{moduleId}]/?api-version=...&model-id=...
type username struct {
	host, device, module string
	modelID              string
}

// parseUsername parses a CONNECT username as IoT Edge's MqttUsernameParser
// does: the query is the last segment when it starts with '?', or (legacy)
// when it contains api-version=. api-version is required; the first
// occurrence of a parameter wins.
func parseUsername(u string) (username, error) {
	var n username
	segs := strings.Split(u, "/")
	last := segs[len(segs)-1]
	var query string
	switch {
	case strings.HasPrefix(last, "?"):
		query = last[1:]
	case strings.Contains(last, "api-version="):
		query = last
	default:
		return n, errors.New("username has no query with api-version")
	}
	segs = segs[:len(segs)-1]
	switch len(segs) {
	case 2:
		n.host, n.device = segs[0], segs[1]
	case 3:
		n.host, n.device, n.module = segs[0], segs[1], segs[2]
	default:
		return n, errors.New("username is not host/deviceId[/moduleId]/?query")
	}
	var apiVersion, modelID bool
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "api-version":
			apiVersion = true
		case "model-id":
			if !modelID {
				modelID = true
				d, err := url.PathUnescape(v)
				if err != nil {
					return n, errors.New("username: model-id is not percent-encoded correctly")
				}
				n.modelID = d
			}
		}
	}
	if !apiVersion {
		return n, errors.New("username has no api-version")
	}
	return n, nil
}

// sameHost reports whether the host of a username names the hub host,
// compared case-insensitively and ignoring a ":port" after it: the SDKs
// put the port of a connection string's HostName into the username (and
// into the token, where the authenticator ignores it likewise).
func sameHost(got, host string) bool {
	if strings.EqualFold(got, host) {
		return true
	}
	i := strings.LastIndexByte(got, ':')
	if i < 0 || i == len(got)-1 || strings.Trim(got[i+1:], "0123456789") != "" {
		return false
	}
	return strings.EqualFold(got[:i], host)
}

// splitClientID splits an MQTT client id into device and module id.
func splitClientID(id string) (device, module string, ok bool) {
	device, module, _ = strings.Cut(id, "/")
	return device, module, device != "" && !strings.Contains(module, "/") && (module != "" || !strings.HasSuffix(id, "/"))
}

// Topic kinds a device may publish to.
const (
	topicOther     = iota // not allowed: close the connection
	topicTelemetry        // devices/{d}[/modules/{m}]/messages/events[/bag][/]
	topicIgnored          // twin and method topics: accepted and dropped for now
)

// classifyTopic says what a PUBLISH topic of the identity (device, module)
// is, and returns the property bag of a telemetry topic.
func classifyTopic(topic, device, module string) (kind int, bag string) {
	if strings.HasPrefix(topic, "$iothub/") {
		if strings.HasPrefix(topic, "$iothub/twin/GET/") ||
			strings.HasPrefix(topic, "$iothub/twin/PATCH/properties/reported/") ||
			strings.HasPrefix(topic, "$iothub/methods/res/") {
			return topicIgnored, ""
		}
		return topicOther, ""
	}
	rest, ok := strings.CutPrefix(topic, "devices/")
	if !ok {
		return topicOther, ""
	}
	rest, ok = strings.CutPrefix(rest, device)
	if !ok {
		return topicOther, ""
	}
	if module != "" {
		if rest, ok = strings.CutPrefix(rest, "/modules/"+module); !ok {
			return topicOther, ""
		}
	}
	rest, ok = strings.CutPrefix(rest, "/messages/events")
	if !ok {
		return topicOther, ""
	}
	if rest == "" || rest == "/" {
		return topicTelemetry, ""
	}
	if rest[0] != '/' {
		return topicOther, ""
	}
	bag = strings.TrimSuffix(rest[1:], "/")
	if strings.IndexByte(bag, '/') >= 0 {
		return topicOther, ""
	}
	return topicTelemetry, bag
}

// Subscription filters a device may use.
const (
	filterOther = iota
	filterC2D
	filterTwinOrMethods
)

// classifyFilter says what a SUBSCRIBE filter of the identity is.
func classifyFilter(filter, device, module string) int {
	switch filter {
	case "$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#":
		return filterTwinOrMethods
	}
	if module == "" && filter == "devices/"+device+"/messages/devicebound/#" {
		return filterC2D
	}
	return filterOther
}
