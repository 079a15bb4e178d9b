package record

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hubkit/hubkit"
)

// TimeLayout is the layout of EnqueuedTimeUtc and enqueuedTime: seven
// fractional digits and a Z, as IoT Hub writes them.
const TimeLayout = "2006-01-02T15:04:05.0000000Z"

// Record is one message in the storage JSON shape.
type Record struct {
	EnqueuedTimeUtc  string            `json:"EnqueuedTimeUtc"`
	Properties       map[string]string `json:"Properties"`
	SystemProperties map[string]string `json:"SystemProperties"`
	Body             json.RawMessage   `json:"Body"`
}

// IsJSON reports whether m's body is written as JSON rather than base64.
func IsJSON(m *hubkit.Message) bool {
	ct, _, _ := strings.Cut(m.System.ContentType, ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/json") &&
		strings.EqualFold(m.System.ContentEncoding, "utf-8") && json.Valid(m.Body)
}

// New returns the record of m.
func New(m *hubkit.Message) Record {
	s := &m.System
	r := Record{Properties: make(map[string]string, len(m.Properties)), SystemProperties: map[string]string{}}
	if !s.EnqueuedTime.IsZero() {
		r.EnqueuedTimeUtc = s.EnqueuedTime.UTC().Format(TimeLayout)
	}
	for _, p := range m.Properties {
		r.Properties[p.Name] = p.Value
	}
	for _, f := range []struct{ name, v string }{
		{"messageId", s.MessageID}, {"correlationId", s.CorrelationID}, {"userId", s.UserID},
		{"connectionDeviceId", s.ConnectionDeviceID}, {"connectionModuleId", s.ConnectionModuleID},
		{"connectionDeviceGenerationId", s.ConnectionAuthGenerationID}, {"connectionAuthMethod", s.ConnectionAuthMethod},
		{"contentType", s.ContentType}, {"contentEncoding", s.ContentEncoding},
		{"enqueuedTime", r.EnqueuedTimeUtc}, {"dt-dataschema", s.DataSchema}, {"dt-subject", s.Subject},
	} {
		if f.v != "" {
			r.SystemProperties[f.name] = f.v
		}
	}
	if IsJSON(m) {
		r.Body = m.Body
	} else {
		r.Body, _ = json.Marshal(m.Body) // a []byte marshals as a base64 string and never fails
	}
	return r
}

// Marshal returns the JSON record of m, without a trailing newline.
func Marshal(m *hubkit.Message) ([]byte, error) {
	b, err := json.Marshal(New(m))
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return b, nil
}

// Message decodes r back into a message. A Body is taken as JSON when the
// system properties say JSON, else as base64.
func (r *Record) Message() (*hubkit.Message, error) {
	m, err := fromMaps(r.EnqueuedTimeUtc, r.Properties, r.SystemProperties)
	if err != nil {
		return nil, err
	}
	body := bytes.TrimSpace(r.Body)
	if len(body) == 0 {
		return nil, errors.New("record: no Body")
	}
	m.Body = body
	if IsJSON(m) && body[0] != '"' {
		return m, nil
	}
	var s string
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("record: Body is neither JSON of a JSON message nor a base64 string: %w", err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("record: Body: %w", err)
	}
	m.Body = b
	return m, nil
}

// fromMaps builds a message, without body, from the fields of a record.
func fromMaps(enqueued string, props, sp map[string]string) (*hubkit.Message, error) {
	m := &hubkit.Message{System: hubkit.SystemProperties{
		MessageID: sp["messageId"], CorrelationID: sp["correlationId"], UserID: sp["userId"],
		ConnectionDeviceID: sp["connectionDeviceId"], ConnectionModuleID: sp["connectionModuleId"],
		ConnectionAuthGenerationID: sp["connectionDeviceGenerationId"], ConnectionAuthMethod: sp["connectionAuthMethod"],
		ContentType: sp["contentType"], ContentEncoding: sp["contentEncoding"],
		DataSchema: sp["dt-dataschema"], Subject: sp["dt-subject"],
	}}
	if enqueued != "" {
		t, err := time.Parse(time.RFC3339Nano, enqueued)
		if err != nil {
			return nil, fmt.Errorf("record: EnqueuedTimeUtc: %w", err)
		}
		m.System.EnqueuedTime = t
	}
	for k, v := range props {
		m.Properties = append(m.Properties, hubkit.Property{Name: k, Value: v})
	}
	return m, nil
}

// Unmarshal decodes one JSON record into a message.
func Unmarshal(data []byte) (*hubkit.Message, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return r.Message()
}
