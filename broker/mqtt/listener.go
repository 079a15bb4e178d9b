package mqtt

import (
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
// gets the connect timeout as its first deadline, and the goroutines it
// starts are joined by Close.
type listener struct {
	id      string
	ln      net.Listener
	timeout time.Duration
	ended   func(net.Conn) // called when mochi is done with a connection
	ws      *http.Server   // nil for MQTT over TCP
	wg      sync.WaitGroup // accept loop and connection goroutines
	once    sync.Once
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) Init(*slog.Logger) error { return nil }
func (l *listener) ID() string              { return l.id }
func (l *listener) Address() string         { return l.ln.Addr().String() }
func (l *listener) Protocol() string        { return l.id }

// Serve accepts connections until the listener closes. mochi runs it in a
// goroutine of its own; Close waits for it.
func (l *listener) Serve(establish listeners.EstablishFn) {
	l.wg.Add(1)
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
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.establish(establish, c)
		}()
	}
}

func (l *listener) establish(establish listeners.EstablishFn, c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(l.timeout))
	_ = establish(l.id, c)
	_ = c.Close()
	l.ended(c)
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
		l.wg.Add(1)
		defer l.wg.Done()
		l.establish(establish, &wsConn{Conn: ws})
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

// Close stops accepting, has mochi close this listener's clients and
// waits for the listener's goroutines.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.stop()
	closeClients(l.id)
	l.wg.Wait()
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
