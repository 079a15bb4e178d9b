// Package examples_test builds every example hub, runs it on loopback ports
// and temporary directories, talks to it as devices and services do, and
// stops it with SIGINT, checking that it exits cleanly.
package examples_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/auth"
)

// timeout bounds every wait of these tests: builds and starts share two
// busy cores, so it is generous.
const timeout = 60 * time.Second

// bin holds the examples built by TestMain, one binary per directory.
var bin string

// TestMain builds every example once, in one go build, before the tests.
func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hubkit-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./...")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./...: %v\n%s", err, out)
		return 1
	}
	bin = dir
	return m.Run()
}

// build returns the binary of the example in directory name.
func build(t *testing.T, name string) string {
	t.Helper()
	exe := filepath.Join(bin, name)
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("example %s was not built: %v", name, err)
	}
	return exe
}

// A program is a running example.
type program struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr buffer
	done           chan struct{} // closed when the program has exited
	err            error         // its exit status, once done is closed
}

// start runs exe with args in a fresh temporary working directory. The
// program is killed at the end of the test if it still runs, and its
// output is logged when the test failed.
func start(t *testing.T, exe string, args ...string) *program {
	t.Helper()
	p := &program{t: t, cmd: exec.Command(exe, args...), done: make(chan struct{})}
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", filepath.Base(exe), p.stdout.String(), filepath.Base(exe), p.stderr.String())
		}
	})
	return p
}

// waitFor polls out, the program's stdout or stderr, until the regular
// expression re matches, and returns its submatches.
func (p *program) waitFor(out *buffer, re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	eventually(p.t, fmt.Sprintf("output matching %q", re), func() bool {
		m = rx.FindStringSubmatch(out.String())
		select {
		case <-p.done:
			if m == nil {
				p.t.Fatalf("exited (%v) before printing anything matching %q", p.err, re)
			}
		default:
		}
		return m != nil
	})
	return m
}

// eventually polls cond until it is true, and fails the test when it is
// still false after timeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGINT and checks that the program exits with status 0
// without logging an error.
func (p *program) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("still running %v after SIGINT", timeout)
	}
	if p.err != nil {
		p.t.Fatalf("exit after SIGINT: %v", p.err)
	}
	if strings.Contains(p.stderr.String(), "level=ERROR") {
		p.t.Fatal("an error was logged")
	}
}

// buffer is a bytes.Buffer safe for the writes of exec and the reads of
// the test.
type buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// token returns a SAS token of a connection string, valid for an hour.
func token(t *testing.T, connectionString string) string {
	t.Helper()
	cs, err := auth.ParseConnectionString(connectionString)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cs.Token(time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connect connects an MQTT device as the Azure IoT SDKs do: client id the
// device id, username host/deviceId/?api-version=..., password a token.
func connect(t *testing.T, broker, host, deviceID, password string, tlsConfig *tls.Config) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(deviceID).
		SetUsername(host + "/" + deviceID + "/?api-version=2021-04-12").
		SetPassword(password).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectTimeout(timeout).
		SetTLSConfig(tlsConfig)
	c := paho.NewClient(opts)
	if err := wait(c.Connect()); err != nil {
		t.Fatalf("connect %s to %s: %v", deviceID, broker, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publish sends telemetry at QoS 1 and waits for its PUBACK.
func publish(t *testing.T, c paho.Client, deviceID, bag, payload string) {
	t.Helper()
	if err := wait(c.Publish("devices/"+deviceID+"/messages/events/"+bag, 1, false, payload)); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// wait waits for a paho token until timeout.
func wait(tok paho.Token) error {
	if !tok.WaitTimeout(timeout) {
		return os.ErrDeadlineExceeded
	}
	return tok.Error()
}

// refused reports whether an MQTT connection attempt is refused.
func refused(broker, host, deviceID, password string) error {
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(deviceID).
		SetUsername(host + "/" + deviceID + "/?api-version=2021-04-12").SetPassword(password).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(timeout)
	c := paho.NewClient(opts)
	err := wait(c.Connect())
	if err == nil {
		c.Disconnect(100)
	}
	return err
}

// trust returns a TLS client configuration that trusts the CA in caFile.
func trust(t *testing.T, caFile string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return &tls.Config{RootCAs: roots, ServerName: "localhost"}
}

// httpsClient returns an HTTP client that trusts the CA in caFile.
func httpsClient(t *testing.T, caFile string) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: trust(t, caFile)}}
}

func TestMinimal(t *testing.T) {
	exe := build(t, "minimal")
	dir := t.TempDir()
	p := start(t, exe, "-mqtt", "127.0.0.1:0", "-data", dir)
	addr := p.waitFor(&p.stderr, `msg=ready mqtt=(\S+)`)[1]
	cs := p.waitFor(&p.stdout, `device connection string: (\S+)`)[1]

	c := connect(t, "tcp://"+addr, "localhost", "device-1", token(t, cs), nil)
	publish(t, c, "device-1", "", "hello minimal")
	p.waitFor(&p.stdout, `telemetry from device-1: hello minimal`)
	if err := refused("tcp://"+addr, "localhost", "device-1", "SharedAccessSignature sr=localhost&sig=bad&se=9999999999"); err == nil {
		t.Error("a bad token connected")
	}
	c.Disconnect(100)
	p.stop()

	// The store is in dir: a second run keeps the device and its key.
	p = start(t, exe, "-mqtt", "127.0.0.1:0", "-data", dir)
	if again := p.waitFor(&p.stdout, `device connection string: (\S+)`)[1]; again != cs {
		t.Errorf("after a restart the connection string is %s, want %s", again, cs)
	}
	p.stop()
}

func TestCustomAuth(t *testing.T) {
	exe := build(t, "customauth")
	p := start(t, exe, "-mqtt", "127.0.0.1:0", "-tokens", "sensor-1=s3cret,sensor-2=hunter2")
	broker := "tcp://" + p.waitFor(&p.stderr, `msg=ready mqtt=(\S+)`)[1]

	c := connect(t, broker, "localhost", "sensor-2", "hunter2", nil)
	publish(t, c, "sensor-2", "", "hello custom")
	p.waitFor(&p.stdout, `telemetry from sensor-2: hello custom`)
	for _, tc := range []struct{ name, device, password string }{
		{"wrong secret", "sensor-1", "hunter2"},
		{"unknown device", "sensor-3", "s3cret"},
		{"empty secret", "sensor-1", ""},
	} {
		if err := refused(broker, "localhost", tc.device, tc.password); err == nil {
			t.Errorf("%s: connected", tc.name)
		}
	}
	c.Disconnect(100)
	p.stop()

	// A malformed table is refused with a clear error and status 1.
	bad := start(t, exe, "-mqtt", "127.0.0.1:0", "-tokens", "sensor-1")
	bad.waitFor(&bad.stderr, `level=ERROR msg="customauth stopped" err=.*is not deviceId=secret`)
	<-bad.done
	if code := bad.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit status %d with a malformed -tokens, want 1", code)
	}
}

func TestMemStore(t *testing.T) {
	exe := build(t, "memstore")
	p := start(t, exe, "-mqtt", "127.0.0.1:0")
	addr := p.waitFor(&p.stderr, `msg=ready mqtt=(\S+)`)[1]
	cs := p.waitFor(&p.stdout, `device connection string: (\S+)`)[1]

	c := connect(t, "tcp://"+addr, "localhost", "device-1", token(t, cs), nil)
	for _, body := range []string{"one", "two", "three"} {
		publish(t, c, "device-1", "", body)
	}
	p.waitFor(&p.stdout, `(?s)telemetry from device-1: one\n.*telemetry from device-1: two\n.*telemetry from device-1: three\n`)
	c.Disconnect(100)
	p.stop()
	if entries, err := os.ReadDir(p.cmd.Dir); err != nil || len(entries) != 0 {
		t.Errorf("memstore wrote to its working directory: %v %v", entries, err)
	}
}

// A devhub is a running examples/devhub and what it printed.
type devhub struct {
	*program
	args                        []string
	caFile, deviceCS, serviceCS string
	tlsPort, wsURL, httpsPort   string
}

// startDevHub runs devhub with its data in data and every listener on a
// free loopback port.
func startDevHub(t *testing.T, data string) *devhub {
	t.Helper()
	h := &devhub{args: []string{"-data", data, "-mqtt", "127.0.0.1:0", "-mqtts", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-https", "127.0.0.1:0"}}
	p := start(t, build(t, "devhub"), h.args...)
	h.program = p
	p.waitFor(&p.stderr, `msg="devhub ready"`)
	h.caFile = p.waitFor(&p.stdout, `CA certificate \(trust it on devices\): (\S+)`)[1]
	h.deviceCS = p.waitFor(&p.stdout, `device connection string: +(\S+)`)[1]
	h.serviceCS = p.waitFor(&p.stdout, `service connection string: +(\S+)`)[1]
	h.tlsPort = p.waitFor(&p.stdout, `MQTT over TLS: \S+:(\d+)`)[1]
	h.wsURL = p.waitFor(&p.stdout, `MQTT over WebSockets: (\S+)`)[1]
	h.httpsPort = p.waitFor(&p.stdout, `HTTPS device and service API: https://\S+:(\d+)`)[1]
	return h
}

// sendC2D sends a cloud-to-device message through devhub's service API.
func (h *devhub) sendC2D(t *testing.T, deviceID, body string, headers ...string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "https://127.0.0.1:"+h.httpsPort+"/devices/"+deviceID+"/messages/devicebound?api-version=2021-04-12", strings.NewReader(body))
	req.Header.Set("Authorization", token(t, h.serviceCS))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := httpsClient(t, h.caFile).Do(req)
	if err != nil {
		t.Fatalf("C2D through the service API: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("C2D through the service API: %s", res.Status)
	}
}

func TestDevHub(t *testing.T) {
	h := startDevHub(t, filepath.Join(t.TempDir(), "hubdata"))
	p, caFile, deviceCS, serviceCS := h.program, h.caFile, h.deviceCS, h.serviceCS
	tlsPort, wsURL, httpsPort := h.tlsPort, h.wsURL, h.httpsPort
	p.waitFor(&p.stdout, `(?s)mosquitto_pub .*--cafile .* -P .SharedAccessSignature sr=`)
	p.waitFor(&p.stdout, `(?s)curl --cacert .*iothub-ack: full.*/devices/demo-device/messages/devicebound`)
	serviceToken := p.waitFor(&p.stdout, `export SERVICE_TOKEN='([^']+)'`)[1]
	feedbackPath := p.waitFor(&p.stdout, `(?s)curl -i --cacert .*'https://\S+?(/messages/serviceBound/feedback\S+)'`)[1]
	if !strings.Contains(deviceCS, "DeviceId=demo-device") || !strings.Contains(serviceCS, "SharedAccessKeyName=iothubowner") {
		t.Fatalf("connection strings %s and %s", deviceCS, serviceCS)
	}
	tlsConfig := trust(t, caFile)
	deviceToken := token(t, deviceCS)

	// MQTT over TLS: telemetry is logged by the devhub consumer group.
	c := connect(t, "ssl://127.0.0.1:"+tlsPort, "localhost", "demo-device", deviceToken, tlsConfig)
	c2d := make(chan string, 1)
	if err := wait(c.Subscribe("devices/demo-device/messages/devicebound/#", 1, func(_ paho.Client, m paho.Message) {
		c2d <- m.Topic() + " " + string(m.Payload())
	})); err != nil {
		t.Fatal(err)
	}
	publish(t, c, "demo-device", "unit=celsius", `{"temperature":42.5}`)
	p.waitFor(&p.stderr, `msg=telemetry device_id=demo-device .*unit.*celsius.* body="{\\"temperature\\":42.5}"`)

	// The service API, on the HTTPS port, sends a C2D message to it.
	api := "https://127.0.0.1:" + httpsPort
	client := httpsClient(t, caFile)
	h.sendC2D(t, "demo-device", "hello device", "iothub-app-greeting", "hello", "iothub-ack", "full", "iothub-messageid", "m1")
	select {
	case got := <-c2d:
		if !strings.HasPrefix(got, "devices/demo-device/messages/devicebound/") || !strings.Contains(got, "greeting=hello") || !strings.HasSuffix(got, " hello device") {
			t.Errorf("C2D arrived as %q", got)
		}
	case <-time.After(timeout):
		t.Fatal("no C2D message arrived")
	}
	c.Disconnect(100)

	// Its feedback follows within 15 s, read as the printed command does.
	req, _ := http.NewRequest(http.MethodGet, api+feedbackPath, nil)
	req.Header.Set("Authorization", serviceToken)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("feedback: %v", err)
	}
	fb, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(string(fb), `"originalMessageId":"m1"`) || !strings.Contains(string(fb), `"Success"`) {
		t.Fatalf("feedback: %s %s %v", res.Status, fb, err)
	}

	// The HTTPS device API shares the port.
	req, _ = http.NewRequest(http.MethodPost, api+"/devices/demo-device/messages/events?api-version=2021-04-12", strings.NewReader("sent over https"))
	req.Header.Set("Authorization", deviceToken)
	if res, err := client.Do(req); err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("telemetry through the HTTPS device API: %v %v", res, err)
	}
	p.waitFor(&p.stderr, `msg=telemetry device_id=demo-device .*body="sent over https"`)

	// MQTT over WebSockets with TLS.
	ws := connect(t, strings.Replace(wsURL, "localhost", "127.0.0.1", 1), "localhost", "demo-device", deviceToken, tlsConfig)
	publish(t, ws, "demo-device", "", "sent over websockets")
	p.waitFor(&p.stderr, `msg=telemetry device_id=demo-device .*body="sent over websockets"`)
	ws.Disconnect(100)

	// A wrong service token is refused.
	req, _ = http.NewRequest(http.MethodGet, api+"/devices/demo-device?api-version=2021-04-12", nil)
	req.Header.Set("Authorization", deviceToken)
	if res, err := client.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("registry read with a device token: %v %v", res, err)
	}
	p.stop()
	p.waitFor(&p.stderr, `msg="devhub stopped"`)

	// A second run keeps the CA, the device and the policies.
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p = start(t, build(t, "devhub"), h.args...)
	if again := p.waitFor(&p.stdout, `device connection string: +(\S+)`)[1]; again != deviceCS {
		t.Errorf("after a restart the device connection string is %s, want %s", again, deviceCS)
	}
	if again := p.waitFor(&p.stdout, `service connection string: +(\S+)`)[1]; again != serviceCS {
		t.Errorf("after a restart the service connection string is %s, want %s", again, serviceCS)
	}
	if again, err := os.ReadFile(caFile); err != nil || !bytes.Equal(again, ca) {
		t.Errorf("the CA certificate changed on restart (%v)", err)
	}
	p.stop()
}

func TestDeviceSim(t *testing.T) {
	h := startDevHub(t, filepath.Join(t.TempDir(), "hubdata"))
	exe := build(t, "devicesim")
	common := []string{"-broker", "ssl://127.0.0.1:" + h.tlsPort, "-api", "https://127.0.0.1:" + h.httpsPort, "-cafile", h.caFile}

	// With the service connection string it creates its devices.
	sim := start(t, exe, append(common, "-cs", h.serviceCS, "-n", "3", "-rate", "20", "-duration", "10m")...)
	sim.waitFor(&sim.stderr, `msg=ready devices=3`)
	for _, id := range []string{"sim-001", "sim-002", "sim-003"} {
		h.waitFor(&h.stderr, `msg=telemetry device_id=`+id+` .*processingPath.*body="{\\"deviceId\\":\\"`+id+`\\",\\"seq\\":\d+,\\"temperature\\":\d+\.\d}"`)
	}
	h.sendC2D(t, "sim-002", "hello sim", "iothub-app-greeting", "hi")
	sim.waitFor(&sim.stdout, `c2d to sim-002: hello sim \(.*greeting=hi.*\)`)
	sim.stop()
	sim.waitFor(&sim.stderr, `msg=done devices=3 sent=[1-9]\d* received=1`)

	// Tokens signed by the policy's key act for the existing devices.
	sim = start(t, exe, append(common, "-cs", h.serviceCS, "-n", "2", "-register=false", "-rate", "50", "-duration", "1s")...)
	sim.waitFor(&sim.stderr, `msg=done devices=2 sent=[1-9]`)
	<-sim.done
	if sim.err != nil {
		t.Errorf("devicesim -register=false: %v", sim.err)
	}
	if !strings.Contains(sim.stderr.String(), "msg=connected device_id=sim-002") {
		t.Error("sim-002 did not connect with a policy-signed token")
	}

	// With a device connection string it is that device, and it stops by
	// itself after -duration.
	sim = start(t, exe, append(common, "-cs", h.deviceCS, "-rate", "50", "-duration", "1s")...)
	sim.waitFor(&sim.stderr, `msg=done devices=1 sent=[1-9]`)
	<-sim.done
	if sim.err != nil {
		t.Errorf("devicesim -duration 1s: %v", sim.err)
	}
	h.waitFor(&h.stderr, `msg=telemetry device_id=demo-device .*body="{\\"deviceId\\":\\"demo-device\\"`)

	// Bad flags give an error and status 1.
	bad := start(t, exe, "-cs", "HostName=localhost;DeviceId=x")
	bad.waitFor(&bad.stderr, `level=ERROR msg="devicesim stopped" err=.*-cs`)
	<-bad.done
	if code := bad.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit status %d with a malformed -cs, want 1", code)
	}
	h.stop()
}

// TestRouting needs an AMQP 1.0 broker at AMQP_TEST_URL: CI starts
// RabbitMQ with `bash .ci/rabbitmq.sh start`.
func TestRouting(t *testing.T) {
	amqpURL := os.Getenv("AMQP_TEST_URL")
	if amqpURL == "" {
		t.Fatal("AMQP_TEST_URL is unset: start RabbitMQ with `bash .ci/rabbitmq.sh start` and set AMQP_TEST_URL=amqp://guest:guest@127.0.0.1:5672")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := goamqp.Dial(ctx, amqpURL, nil)
	if err != nil {
		t.Fatalf("AMQP broker at %s: %v", amqpURL, err)
	}
	defer conn.Close()
	session, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	address := fmt.Sprintf("/queue/hubkit-example-%d", time.Now().UnixNano())
	hot, err := session.NewReceiver(ctx, address, nil) // declares the queue
	if err != nil {
		t.Fatal(err)
	}

	data := t.TempDir()
	p := start(t, build(t, "routing"), "-data", data, "-mqtt", "127.0.0.1:0", "-amqp-url", amqpURL, "-amqp-address", address)
	addr := p.waitFor(&p.stderr, `msg=ready mqtt=(\S+)`)[1]
	cs := p.waitFor(&p.stdout, `device connection string: (\S+)`)[1]
	c := connect(t, "tcp://"+addr, "localhost", "device-1", token(t, cs), nil)
	const json = "$.ct=application%2Fjson&$.ce=utf-8"
	publish(t, c, "device-1", json, `{"temperature":20}`)
	publish(t, c, "device-1", json, `{"temperature":35}`)
	publish(t, c, "device-1", json+"&processingPath=hot", `{"temperature":25}`)

	// One device's messages keep their order on every endpoint, so what
	// a wrong route let through would arrive before the expected message.
	m, err := hot.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("hot path: %v", err)
	}
	if got := string(m.GetData()); got != `{"temperature":25}` || m.ApplicationProperties["processingPath"] != "hot" {
		t.Errorf("hot path got %s with properties %v", got, m.ApplicationProperties)
	}
	hot.AcceptMessage(ctx, m)

	alert := p.waitFor(&p.stderr, `level=WARN msg=alert record=(.*)`)[1]
	if !strings.Contains(alert, `\"Body\":{\"temperature\":35}`) || !strings.Contains(alert, `\"connectionDeviceId\":\"device-1\"`) {
		t.Errorf("alert record %s", alert)
	}

	// The archive holds all three, as JSON lines under files/localhost/.
	for _, body := range []string{`"Body":{"temperature":20}`, `"Body":{"temperature":35}`, `"Body":{"temperature":25}`} {
		eventually(t, body+" archived", func() bool {
			return strings.Contains(archived(t, filepath.Join(data, "files", "localhost")), body)
		})
	}
	c.Disconnect(100)
	p.stop()
	if n := strings.Count(p.stderr.String(), "msg=alert"); n != 1 {
		t.Errorf("%d alerts, want 1", n)
	}
}

// archived returns the contents of every file under dir.
func archived(t *testing.T, dir string) string {
	t.Helper()
	var all strings.Builder
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		all.Write(b)
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return all.String()
}
