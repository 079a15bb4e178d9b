package mqtt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hubkit/hubkit"
)

// Options configure a [Broker]. The zero value works: it serves plain MQTT
// on 127.0.0.1:1883, for trying hubkit out on one machine.
type Options struct {
	// TCPAddr is the address of the plain MQTT listener (IoT Hub offers
	// none; use it for tests and behind a TLS-terminating proxy). Empty
	// means no plain listener, unless no listener is configured at all,
	// in which case it is 127.0.0.1:1883.
	TCPAddr string
	// TLSAddr is the address of the MQTT over TLS listener, IoT Hub's port
	// 8883. Empty means none. It requires TLSConfig.
	TLSAddr string
	// WebSocketAddr is the address of the MQTT over WebSocket listener,
	// serving the path /$iothub/websocket with subprotocol mqtt, as IoT Hub
	// does on port 443. It uses TLS when TLSConfig is set and plain HTTP
	// otherwise. Empty means none.
	WebSocketAddr string
	// TLSConfig is the server's TLS configuration. The broker uses a clone
	// and sets ClientAuth to tls.RequestClientCert when it is NoClientCert,
	// so that X.509 devices can present a certificate while SAS devices
	// need none; the Authenticator verifies what was presented.
	TLSConfig *tls.Config
	// HostName is the hub's host name. When set, a CONNECT whose username
	// names another host is refused (compared case-insensitively, and
	// ignoring a ":port" after the username's host, which the SDKs send
	// when their connection string's HostName has one). Empty means any
	// host name is accepted.
	HostName string
	// ConnectTimeout is how long a new connection may take to complete the
	// TLS handshake and send CONNECT (and to be authenticated) before it is
	// closed. Zero means 60 seconds, as IoT Edge.
	ConnectTimeout time.Duration
	// MaxPacketSize is the largest MQTT packet accepted, in bytes; a larger
	// one closes the connection. Zero means 256 KiB for the message plus 16
	// KiB for the topic and framing. Messages are limited to 256 KiB
	// (hubkit.ValidateD2C) whatever this says.
	MaxPacketSize int
	// MaxInflight is how many QoS 1 device-to-cloud messages of one
	// connection may wait for their PUBACK; when a connection reaches it,
	// the broker stops reading from it until one is acknowledged. Zero
	// means 64.
	MaxInflight int
	// ReadBufferSize is the size in bytes of each connection's read buffer.
	// Zero means 1024: small, because a hub serves tens of thousands of
	// mostly idle devices.
	ReadBufferSize int
	// Logger receives the broker's logs. Nil means slog.Default(). The
	// logs of the MQTT engine (mochi-mqtt) itself are discarded: they may
	// quote packets, payloads included.
	Logger *slog.Logger
}

// withDefaults returns a copy of o with defaults filled in, or every
// problem found.
func (o Options) withDefaults() (Options, error) {
	var problems []error
	if o.TCPAddr == "" && o.TLSAddr == "" && o.WebSocketAddr == "" {
		o.TCPAddr = "127.0.0.1:1883"
	}
	if o.TLSAddr != "" && o.TLSConfig == nil {
		problems = append(problems, errors.New("TLSAddr is set but TLSConfig is nil"))
	}
	if o.TLSConfig != nil {
		o.TLSConfig = o.TLSConfig.Clone()
		if o.TLSConfig.ClientAuth == tls.NoClientCert {
			o.TLSConfig.ClientAuth = tls.RequestClientCert
		}
	}
	if o.ConnectTimeout < 0 || o.MaxPacketSize < 0 || o.MaxInflight < 0 || o.ReadBufferSize < 0 {
		problems = append(problems, errors.New("ConnectTimeout, MaxPacketSize, MaxInflight and ReadBufferSize must not be negative"))
	}
	if o.MaxInflight > 65535 {
		problems = append(problems, errors.New("MaxInflight must be at most 65535"))
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 60 * time.Second
	}
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = hubkit.MaxD2CSize + 16*1024
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = 64
	}
	if o.ReadBufferSize == 0 {
		o.ReadBufferSize = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if len(problems) > 0 {
		return o, fmt.Errorf("mqtt: invalid options: %w", errors.Join(problems...))
	}
	return o, nil
}
