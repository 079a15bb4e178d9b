package hubkit

import (
	"fmt"
	"strings"
	"time"
)

// Size limits, in bytes, counted the way IoT Hub counts them (see [Message.Size]).
const (
	// MaxD2CSize is the largest device-to-cloud message IoT Hub accepts: 256 KiB.
	MaxD2CSize = 256 * 1024
	// MaxC2DSize is the largest cloud-to-device message IoT Hub accepts: 64 KiB.
	MaxC2DSize = 64 * 1024
	// MaxIDLength is the longest message id, device id or module id: 128 characters.
	MaxIDLength = 128
)

// Message sources, the values of [SystemProperties.MessageSource].
const (
	SourceTelemetry        = "Telemetry"
	SourceLifecycle        = "deviceLifecycleEvents"
	SourceConnectionState  = "deviceConnectionStateEvents"
	SourceTwinChange       = "twinChangeEvents"
	SourceDigitalTwinEvent = "digitalTwinChangeEvents"
)

// A Message is what travels through a hub in either direction: an opaque body,
// the fixed set of system properties and a bag of application properties.
//
// A Message is a plain value: the hub never keeps a reference to a Message
// given to it after the call returns, and never modifies one it hands out
// after handing it out. Copy with [Message.Clone] before changing a message
// someone else may hold.
type Message struct {
	// Body is the payload. The hub only looks inside it to evaluate routing
	// queries on $body, and only when the content type says JSON.
	Body []byte
	// System holds the system properties.
	System SystemProperties
	// Properties holds the application properties, in the order the sender
	// gave them. Names are compared case-insensitively.
	Properties Properties
}

// SystemProperties are the properties whose meaning IoT Hub defines. Some are
// set by the sender, some are stamped by the hub and overwrite whatever the
// sender supplied (see spec "Hub-stamped properties").
type SystemProperties struct {
	// MessageID is the sender's id for the message (≤ 128 ASCII characters,
	// see [ValidateMessageID]).
	MessageID string
	// CorrelationID links a message to another, typically a request.
	CorrelationID string
	// UserID names the sender; on hub-generated messages it is the hub name.
	UserID string
	// To is the destination; the hub sets /devices/{id}/messages/deviceBound on C2D.
	To string
	// ExpiryTime is the absolute expiry time. Zero means none was given.
	ExpiryTime time.Time
	// ContentType is the MIME type of Body, e.g. application/json.
	ContentType string
	// ContentEncoding is the character encoding of Body, e.g. utf-8.
	ContentEncoding string
	// CreationTime is iothub-creation-time-utc as the device sent it (a UTC
	// ISO 8601 string); the hub passes it through.
	CreationTime string
	// Ack is the feedback a C2D sender asks for (iothub-ack). Empty means none.
	Ack Ack
	// SequenceNumber is stamped by the hub: per partition on D2C, per device on C2D.
	SequenceNumber uint64
	// EnqueuedTime is stamped by the hub when it stores the message.
	EnqueuedTime time.Time
	// DeliveryCount is the number of times a C2D message was abandoned.
	DeliveryCount uint32
	// ConnectionDeviceID is the authenticated device that sent a D2C message.
	ConnectionDeviceID string
	// ConnectionModuleID is the authenticated module that sent it, if any.
	ConnectionModuleID string
	// ConnectionAuthGenerationID is the sender's registry generation id.
	ConnectionAuthGenerationID string
	// ConnectionAuthMethod is the compact JSON describing how the sender
	// authenticated, e.g. {"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}.
	ConnectionAuthMethod string
	// MessageSource is iothub-message-source: Telemetry or an event source.
	MessageSource string
	// DataSchema is dt-dataschema, the Plug and Play model id of the connection.
	DataSchema string
	// Subject is dt-subject, the Plug and Play component name.
	Subject string
	// InterfaceID is iothub-interface-id (legacy Plug and Play).
	InterfaceID string
	// MessageSchema is the $.schema property some devices send.
	MessageSchema string
}

// Ack is the iothub-ack value of a C2D message: which outcomes produce feedback.
type Ack string

// The valid Ack values. The empty Ack means AckNone.
const (
	AckNone     Ack = "none"
	AckPositive Ack = "positive"
	AckNegative Ack = "negative"
	AckFull     Ack = "full"
)

// ParseAck parses an iothub-ack value case-insensitively. The empty string is AckNone.
func ParseAck(s string) (Ack, error) {
	switch strings.ToLower(s) {
	case "", "none":
		return AckNone, nil
	case "positive":
		return AckPositive, nil
	case "negative":
		return AckNegative, nil
	case "full":
		return AckFull, nil
	}
	return "", fmt.Errorf("%w: iothub-ack %q is not one of none, positive, negative, full", ErrArgumentInvalid, s)
}

// Positive reports whether a completed message produces feedback.
func (a Ack) Positive() bool { return a == AckPositive || a == AckFull }

// Negative reports whether a dead-lettered or purged message produces feedback.
func (a Ack) Negative() bool { return a == AckNegative || a == AckFull }

// A Property is one application property. Null marks a property sent
// without a value (a bare key in an MQTT property bag); Value is then "".
type Property struct {
	// Name is the property name as the sender gave it.
	Name string
	// Value is the property value; "" when Null is set.
	Value string
	// Null reports that the property was sent without a value.
	Null bool
}

// Properties is an ordered list of application properties with
// case-insensitive names, as IoT Hub treats them.
type Properties []Property

// Get returns the value of the property named name, compared
// case-insensitively, and whether it exists.
func (ps Properties) Get(name string) (string, bool) {
	if i := ps.index(name); i >= 0 {
		return ps[i].Value, true
	}
	return "", false
}

// Lookup returns the property named name, compared case-insensitively.
func (ps Properties) Lookup(name string) (Property, bool) {
	if i := ps.index(name); i >= 0 {
		return ps[i], true
	}
	return Property{}, false
}

// Set sets the property named name, replacing one whose name differs only
// in case, as IoT Hub keeps only one of such properties.
func (ps *Properties) Set(name, value string) {
	if i := ps.index(name); i >= 0 {
		(*ps)[i] = Property{Name: name, Value: value}
		return
	}
	*ps = append(*ps, Property{Name: name, Value: value})
}

// Delete removes the property named name, compared case-insensitively.
func (ps *Properties) Delete(name string) {
	if i := ps.index(name); i >= 0 {
		*ps = append((*ps)[:i], (*ps)[i+1:]...)
	}
}

func (ps Properties) index(name string) int {
	for i := range ps {
		if strings.EqualFold(ps[i].Name, name) {
			return i
		}
	}
	return -1
}

// Clone returns a deep copy of m.
func (m *Message) Clone() *Message {
	c := *m
	if m.Body != nil {
		c.Body = append([]byte(nil), m.Body...)
	}
	if m.Properties != nil {
		c.Properties = append(Properties(nil), m.Properties...)
	}
	return &c
}

// expirySize is what a set expiry time adds to [Message.Size]: the length
// of its ISO 8601 UTC form with milliseconds, as devices send it in $.exp.
const expirySize = len("2006-01-02T15:04:05.000Z")

// Size returns the size IoT Hub uses for limits and metering: body bytes,
// plus the bytes of every string system property value, plus the bytes of
// every application property name and value. Framing is not counted.
//
// IoT Hub documents no byte count for the values that are not strings. A
// set ExpiryTime counts 24 bytes, the length of its ISO 8601 UTC form with
// milliseconds (2006-01-02T15:04:05.000Z), whatever its precision, so that
// a message's size does not depend on how finely its sender wrote the time.
// SequenceNumber, EnqueuedTime and DeliveryCount are not counted: the hub
// stamps them after it has checked the size, and the delivery count grows
// with each delivery, while the size of a stored message must stay the
// one that was checked.
func (m *Message) Size() int {
	s := &m.System
	n := len(m.Body) + len(s.MessageID) + len(s.CorrelationID) + len(s.UserID) + len(s.To) +
		len(s.ContentType) + len(s.ContentEncoding) + len(s.CreationTime) + len(s.Ack) +
		len(s.ConnectionDeviceID) + len(s.ConnectionModuleID) + len(s.ConnectionAuthGenerationID) +
		len(s.ConnectionAuthMethod) + len(s.MessageSource) + len(s.DataSchema) + len(s.Subject) +
		len(s.InterfaceID) + len(s.MessageSchema)
	if !s.ExpiryTime.IsZero() {
		n += expirySize
	}
	for _, p := range m.Properties {
		n += len(p.Name) + len(p.Value)
	}
	return n
}

// ValidateD2C checks a device-to-cloud message before the hub accepts it:
// the 256 KiB size limit. IoT Hub accepts D2C message ids and property
// values as sent, so they are not checked.
func ValidateD2C(m *Message) error {
	if n := m.Size(); n > MaxD2CSize {
		return fmt.Errorf("%w: device-to-cloud message is %d bytes, the limit is %d", ErrMessageTooLarge, n, MaxD2CSize)
	}
	return nil
}

// ValidateC2D checks a cloud-to-device message at send time, as IoT Hub
// does: the 64 KiB size limit, the message id format, and application
// property names and values limited to the HTTP token characters.
func ValidateC2D(m *Message) error {
	if n := m.Size(); n > MaxC2DSize {
		return fmt.Errorf("%w: cloud-to-device message is %d bytes, the limit is %d", ErrMessageTooLarge, n, MaxC2DSize)
	}
	if m.System.MessageID != "" {
		if err := ValidateMessageID(m.System.MessageID); err != nil {
			return err
		}
	}
	if _, err := ParseAck(string(m.System.Ack)); err != nil {
		return err
	}
	for _, p := range m.Properties {
		if p.Name == "" || !IsToken(p.Name) {
			return fmt.Errorf("%w: application property name %q: only ASCII letters, digits and !#$%%&'*+-.^_`|~ are allowed", ErrArgumentInvalid, p.Name)
		}
		if !IsToken(p.Value) {
			return fmt.Errorf("%w: value of application property %q: only ASCII letters, digits and !#$%%&'*+-.^_`|~ are allowed", ErrArgumentInvalid, p.Name)
		}
	}
	return nil
}

// ValidateMessageID checks the IoT Hub message id rules: 1 to 128 ASCII
// letters, digits and - : . + % _ # * ? ! ( ) , = @ ; $ '.
func ValidateMessageID(id string) error {
	if err := validID("message id", id); err != nil {
		return fmt.Errorf("%w: %w", ErrArgumentInvalid, err)
	}
	return nil
}

// ValidateDeviceID checks the IoT Hub device and module id rules, which are
// the message id rules: 1 to 128 ASCII letters, digits and
// - : . + % _ # * ? ! ( ) , = @ ; $ '. A slash is never allowed.
func ValidateDeviceID(id string) error {
	if err := validID("device id", id); err != nil {
		return fmt.Errorf("%w: %w", ErrArgumentInvalid, err)
	}
	return nil
}

func validID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%s is %d characters long, the limit is %d", what, len(id), MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if !isIDChar(id[i]) {
			return fmt.Errorf("%s %q: character %q at %d is not allowed", what, id, id[i], i)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isIDChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("-:.+%_#*?!(),=@;$'", c) >= 0
}

// IsToken reports whether s uses only HTTP token characters (RFC 9110): the
// characters IoT Hub allows in application property names and values of
// HTTPS device-to-cloud messages and of every cloud-to-device message.
func IsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && strings.IndexByte("!#$%&'*+-.^_`|~", c) < 0 {
			return false
		}
	}
	return true
}
