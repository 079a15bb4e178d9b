package https

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// appPrefix starts the header (or batch property) name of every
// application property.
const appPrefix = "iothub-app-"

// batchContentType marks a send whose body is a JSON array of messages.
const batchContentType = "application/vnd.microsoft.iothub.json"

// setProperty applies the property called name (a header name or a batch
// property key) to m. It reports false for a name that is neither a system
// property nor iothub-app-{name}. Only the prefix and system property names
// compare case-insensitively; an application property keeps the case of
// the rest of name.
func setProperty(m *hubkit.Message, name, value string) (bool, error) {
	s := &m.System
	switch strings.ToLower(name) {
	case "iothub-messageid":
		s.MessageID = value
	case "iothub-correlationid":
		s.CorrelationID = value
	case "iothub-userid":
		s.UserID = value
	case "iothub-to":
		s.To = value
	case "iothub-contenttype":
		s.ContentType = value
	case "iothub-contentencoding":
		s.ContentEncoding = value
	case "iothub-creation-time-utc", appPrefix + "iothub-creation-time-utc":
		s.CreationTime = value
	case "iothub-interface-id":
		s.InterfaceID = value
	case "dt-subject":
		s.Subject = value
	case "iothub-expiry":
		t, err := parseTime(value)
		if err != nil {
			return true, fmt.Errorf("%w: iothub-expiry %q is not an ISO 8601 UTC time", hubkit.ErrArgumentInvalid, value)
		}
		s.ExpiryTime = t
	default:
		if len(name) <= len(appPrefix) || !strings.EqualFold(name[:len(appPrefix)], appPrefix) {
			return false, nil
		}
		p := name[len(appPrefix):]
		if !hubkit.IsToken(p) || !hubkit.IsToken(value) {
			return true, fmt.Errorf("%w: application property %q: names and values may only use ASCII letters, digits and !#$%%&'*+-.^_`|~", hubkit.ErrArgumentInvalid, p)
		}
		m.Properties.Set(p, value)
	}
	return true, nil
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	return http.ParseTime(v)
}

// messageFromHeaders builds a message from the request headers and body.
// Headers that carry no property are ignored. Go's server keeps only the
// canonical form of a header name, so application property names come out
// lower-cased.
func messageFromHeaders(h http.Header, body []byte) (*hubkit.Message, error) {
	m := &hubkit.Message{Body: body}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if _, err := setProperty(m, strings.ToLower(k), h[k][0]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// batchItem is one message of a batch send.
type batchItem struct {
	Body          *string    `json:"body"`
	Base64Encoded *bool      `json:"base64Encoded"` // absent means true
	Properties    orderedMap `json:"properties"`
}

// orderedMap is a JSON object of strings, in the order the sender wrote it.
type orderedMap [][2]string

// UnmarshalJSON decodes a JSON object whose values are strings.
func (o *orderedMap) UnmarshalJSON(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	t, err := d.Token()
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('{') {
		return errors.New("properties is not a JSON object")
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return err
		}
		var v string
		if err := d.Decode(&v); err != nil {
			return fmt.Errorf("property %q: value is not a string", k)
		}
		*o = append(*o, [2]string{k.(string), v})
	}
	return nil
}

// decodeBatch decodes the body of a batch send: a JSON array of
// {"body": base64, "properties": {"iothub-app-name": "value", ...}}.
func decodeBatch(data []byte) ([]*hubkit.Message, error) {
	var items []batchItem
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, fmt.Errorf("%w: batch is not a JSON array of {\"body\":base64,\"properties\":{...}}: %w", hubkit.ErrArgumentInvalid, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: batch is empty", hubkit.ErrArgumentInvalid)
	}
	msgs := make([]*hubkit.Message, len(items))
	for i, it := range items {
		m := &hubkit.Message{}
		if it.Body != nil {
			m.Body = []byte(*it.Body)
			if it.Base64Encoded == nil || *it.Base64Encoded {
				b, err := base64.StdEncoding.DecodeString(*it.Body)
				if err != nil {
					return nil, fmt.Errorf("%w: batch message %d: body is not base64: %w", hubkit.ErrArgumentInvalid, i, err)
				}
				m.Body = b
			}
		}
		for _, p := range it.Properties {
			known, err := setProperty(m, p[0], p[1])
			if err == nil && !known {
				err = fmt.Errorf("%w: property %q is neither iothub-app-{name} nor a system property", hubkit.ErrArgumentInvalid, p[0])
			}
			if err != nil {
				return nil, fmt.Errorf("batch message %d: %w", i, err)
			}
		}
		msgs[i] = m
	}
	return msgs, nil
}

// writeDelivery writes a received C2D message as a 200 response. Header
// names are written lower-case, as IoT Hub writes them.
func writeDelivery(w http.ResponseWriter, deviceID string, d queue.Delivery) {
	h := w.Header()
	s := &d.Message.System
	set := func(name, value string) {
		if value != "" {
			h[name] = []string{value}
		}
	}
	to := s.To
	if to == "" {
		to = "/devices/" + deviceID + "/messages/deviceBound"
	}
	h["ETag"] = []string{`"` + d.LockToken + `"`}
	set("iothub-messageid", s.MessageID)
	set("iothub-sequencenumber", strconv.FormatUint(s.SequenceNumber, 10))
	set("iothub-enqueuedtime", formatTime(s.EnqueuedTime))
	set("iothub-expiry", formatTime(s.ExpiryTime))
	set("iothub-deliverycount", strconv.FormatUint(uint64(s.DeliveryCount), 10))
	set("iothub-to", to)
	set("iothub-userid", s.UserID)
	set("iothub-correlationid", s.CorrelationID)
	set("iothub-ack", string(s.Ack))
	set("iothub-contenttype", s.ContentType)
	set("iothub-contentencoding", s.ContentEncoding)
	h["Content-Type"] = nil // no sniffing: the body is the sender's bytes
	set("Content-Type", s.ContentType)
	for _, p := range d.Message.Properties {
		h[appPrefix+p.Name] = []string{p.Value}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(d.Message.Body))}
	w.WriteHeader(http.StatusOK)
	w.Write(d.Message.Body) // a failed write means the device went away; its lock runs out
}

// formatTime renders t in ISO 8601 UTC, or "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
