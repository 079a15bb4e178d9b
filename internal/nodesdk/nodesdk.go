package nodesdk

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// Dir returns the directory holding package.json and the scripts.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Ensure makes sure the pinned SDK is installed and returns [Dir]. When
// node_modules is missing it runs npm ci, holding a file lock so that test
// binaries of several packages running at once install only once. It fails
// the test when node or npm is missing or the install fails.
func Ensure(t testing.TB) string {
	t.Helper()
	dir := Dir()
	lock, err := os.OpenFile(filepath.Join(dir, "node_modules.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("nodesdk: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("nodesdk: lock: %v", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "azure-iot-device-mqtt", "package.json")); err == nil {
		return dir
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("nodesdk: node is not installed (apt-get install nodejs npm): %v", err)
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nodesdk: npm ci: %v\n%s", err, out)
	}
	return dir
}

// Plan tells device.js what one device does. It is passed as JSON.
type Plan struct {
	// ConnectionString is the device's connection string (HostName,
	// DeviceId, SharedAccessKey, optionally GatewayHostName=host:port).
	ConnectionString string `json:"connectionString"`
	// Transport is mqtt (the default), mqttws or http.
	Transport string `json:"transport,omitempty"`
	// WebSocketPort, when not zero, sends the mqttws transport's
	// connections to 127.0.0.1 on this port (the SDK dials port 443 of the
	// host name only); TLS still checks the certificate for the host name.
	WebSocketPort int `json:"webSocketPort,omitempty"`
	// TokenValidSeconds, when not zero, sets the SDK's tokenRenewal option:
	// tokens minted by the SDK are valid this many seconds.
	TokenValidSeconds int `json:"tokenValidSeconds,omitempty"`
	// TokenMarginSeconds is the tokenRenewal margin: the SDK renews its
	// token (reconnecting, on MQTT) this many seconds before it expires.
	// It is used only with TokenValidSeconds and must be smaller.
	TokenMarginSeconds int `json:"tokenMarginSeconds,omitempty"`
	// Send is sent in order with sendEvent, each after the previous was
	// acknowledged.
	Send []Message `json:"send,omitempty"`
	// Receive is how many C2D messages to wait for (a message listener is
	// attached before open) before closing.
	Receive int `json:"receive,omitempty"`
	// TimeoutMillis ends the program with exit status 1. Zero means 60 s.
	TimeoutMillis int `json:"timeoutMillis,omitempty"`
}

// Message is a message as the SDK sees it: the body as text and the SDK's
// Message fields. device.js sends it (Plan.Send) and prints the C2D
// messages it receives in this form; empty fields are not set.
type Message struct {
	// Data is the body, as UTF-8 text.
	Data string `json:"data"`
	// MessageID is the SDK's messageId ($.mid on MQTT).
	MessageID string `json:"messageId,omitempty"`
	// CorrelationID is the SDK's correlationId ($.cid).
	CorrelationID string `json:"correlationId,omitempty"`
	// UserID is the SDK's userId ($.uid).
	UserID string `json:"userId,omitempty"`
	// To is the SDK's to ($.to); C2D messages carry the device's
	// /devices/{id}/messages/deviceBound.
	To string `json:"to,omitempty"`
	// ExpiryTimeUTC is the SDK's expiryTimeUtc ($.exp), as the text it
	// received: the SDK does not parse it.
	ExpiryTimeUTC string `json:"expiryTimeUtc,omitempty"`
	// ContentType is the SDK's contentType ($.ct).
	ContentType string `json:"contentType,omitempty"`
	// ContentEncoding is the SDK's contentEncoding ($.ce).
	ContentEncoding string `json:"contentEncoding,omitempty"`
	// Properties are the application properties. On a received C2D
	// message they include every key the SDK does not map to a field,
	// iothub-ack among them.
	Properties map[string]string `json:"properties,omitempty"`
}

// Event is one line device.js prints.
type Event struct {
	// Event is what happened: connected, sent, message, disconnect, error
	// or closed (the program closed the client and ends).
	Event string `json:"event"`
	// Index is, for sent, the position in Plan.Send of the message the
	// hub acknowledged.
	Index int `json:"index"`
	// Message is, for message, the C2D message received.
	Message Message `json:"message"`
	// Error is, for error, the SDK's error as text.
	Error string `json:"error"`
}

// Command returns the command that runs device.js with p, from the
// directory [Ensure] returned, with env added to the environment (for
// example NODE_EXTRA_CA_CERTS=<pem file> to trust a test CA).
func Command(ctx context.Context, t testing.TB, p Plan, env ...string) *exec.Cmd {
	t.Helper()
	dir := Ensure(t)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("nodesdk: %v", err)
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "device.js"), string(b))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return cmd
}
