// Package nodesdk runs the official Azure IoT device SDK for Node.js from Go
// tests, so that hubkit's brokers are proven against what real devices send.
//
// The SDK versions are pinned in package.json and package-lock.json beside
// this file. [Ensure] installs them with npm ci when node_modules is
// missing; tests never skip for want of them. The JavaScript programs the
// tests run live here too: device.js plays one device from a JSON plan.
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
// Message fields.
type Message struct {
	Data            string            `json:"data"`
	MessageID       string            `json:"messageId,omitempty"`
	CorrelationID   string            `json:"correlationId,omitempty"`
	UserID          string            `json:"userId,omitempty"`
	To              string            `json:"to,omitempty"`
	ExpiryTimeUTC   string            `json:"expiryTimeUtc,omitempty"`
	ContentType     string            `json:"contentType,omitempty"`
	ContentEncoding string            `json:"contentEncoding,omitempty"`
	Properties      map[string]string `json:"properties,omitempty"`
}

// Event is one line device.js prints: Event is connected, sent (Index),
// message (Message), disconnect, error (Error) or closed.
type Event struct {
	Event   string  `json:"event"`
	Index   int     `json:"index"`
	Message Message `json:"message"`
	Error   string  `json:"error"`
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
