package mqtt

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// WebSocketPath is the URL path of the MQTT over WebSocket listener.
const WebSocketPath = "/$iothub/websocket"

// listener is a mochi listener over a net.Listener we bound ourselves, so
// that Start reports bind errors and the bound address, every connection
// gets the connect timeout as its first deadline, and Close closes every
// connection it accepted, at whatever stage (TLS handshake, CONNECT,
// authentication, connected), and joins the goroutines it started.
type listener struct {
	id      string
	ln      net.Listener
	timeout time.Duration
	ended   func(net.Conn) // called when mochi is done with a connection
	ws      *http.Server   // nil for MQTT over TCP
	wg      sync.WaitGroup // accept loop and connection goroutines
	once    sync.Once

	mu     sync.Mutex            // guards the fields below
	conns  map[net.Conn]struct{} // connections handed to mochi and not yet ended
	closed bool                  // Close began: no connection may be added
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) Init(*slog.Logger) error { return nil }
func (l *listener) ID() string              { return l.id }
func (l *listener) Address() string         { return l.ln.Addr().String() }
func (l *listener) Protocol() string        { return l.id }

// Serve accepts connections until the listener closes. mochi runs it in a
// goroutine of its own; Close waits for it.
func (l *listener) Serve(establish listeners.EstablishFn) {
	if !l.track(nil) {
		return // Close came first
	}
	defer l.wg.Done()
	if l.ws != nil {
		l.ws.Handler = l.wsHandler(establish)
		_ = l.ws.Serve(l.ln) // returns when stop closes it
		return
	}
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a failed accept (e.g. too many files) must not end the listener
		}
		if !l.track(c) {
			_ = c.Close()
			return
		}
		go l.establish(establish, c)
	}
}

// track adds c to the connections Close closes and counts its goroutine
// in wg (track(nil) counts the accept loop), or reports false once Close
// has begun. Adding under mu before closed is set keeps wg.Add from
// racing with the wait in Close.
func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if c != nil {
		if l.conns == nil {
			l.conns = make(map[net.Conn]struct{})
		}
		l.conns[c] = struct{}{}
	}
	l.wg.Add(1)
	return true
}

// establish hands a tracked connection to mochi and cleans up once mochi
// is done with it.
func (l *listener) establish(establish listeners.EstablishFn, c net.Conn) {
	defer l.wg.Done()
	_ = c.SetDeadline(time.Now().Add(l.timeout))
	_ = establish(l.id, c)
	_ = c.Close()
	l.ended(c)
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *listener) wsHandler(establish listeners.EstablishFn) http.Handler {
	up := &websocket.Upgrader{
		Subprotocols:    []string{"mqtt"},
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		CheckOrigin:     func(*http.Request) bool { return true }, // devices send no Origin; browsers are not our clients
	}
	mux := http.NewServeMux()
	mux.HandleFunc(WebSocketPath, func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered the request
		}
		c := &wsConn{Conn: ws}
		if !l.track(c) {
			_ = c.Close()
			return
		}
		l.establish(establish, c)
	})
	return mux
}

// stop stops accepting; connections stay open.
func (l *listener) stop() {
	l.once.Do(func() {
		if l.ws != nil {
			_ = l.ws.Close() // closes l.ln; hijacked connections stay open
		} else {
			_ = l.ln.Close()
		}
	})
}

// Close stops accepting, closes every connection the listener accepted
// and waits for the listener's goroutines. Closing the sockets ourselves,
// rather than only having mochi disconnect the clients it knows
// (closeClients), also ends the connections that have not reached the end
// of CONNECT: mochi adds a client to its list only then, and a client
// connected in the meantime would otherwise be read until its keep-alive
// deadline, up to 1767 s.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.stop()
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		_ = socket(c).Close()
	}
	l.mu.Unlock()
	closeClients(l.id) // nothing left to write to: mochi's DISCONNECT cannot block
	l.wg.Wait()
}

// socket returns the TCP connection under c. Closing it never blocks,
// where closing a tls.Conn may wait to send an alert to a peer that does
// not read.
func socket(c net.Conn) net.Conn {
	if ws, ok := c.(*wsConn); ok {
		c = ws.NetConn()
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return c
}

// wsConn is a net.Conn over a WebSocket: MQTT bytes travel in binary
// messages, and a packet may span messages.
type wsConn struct {
	*websocket.Conn
	r  io.Reader  // the message being read; read goroutine only
	mu sync.Mutex // serialises writes and write deadlines, which gorilla does not
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errors.New("mqtt: websocket message is not binary")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}
