package amqp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/hubkit/hubkit"
)

// brokerURL returns AMQP_TEST_URL after checking that the broker answers.
// CI starts RabbitMQ with .ci/rabbitmq.sh; without it the test fails.
func brokerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("AMQP_TEST_URL")
	if u == "" {
		t.Fatal("AMQP_TEST_URL is unset: start RabbitMQ with `bash .ci/rabbitmq.sh start` and set AMQP_TEST_URL=amqp://guest:guest@127.0.0.1:5672")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := goamqp.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("AMQP broker at %s unreachable: %v", u, err)
	}
	c.Close()
	return u
}

// queueName returns a fresh non-durable queue name.
func queueName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "hubkit-test-" + hex.EncodeToString(b)
}

// receiver drains a queue in the background with manual credit, granting
// the next credit only once every message of the last grant is received
// and accepted: RabbitMQ 3.10 with go-amqp stalls with automatic credit.
type receiver struct {
	mu   sync.Mutex // guards got
	got  []*goamqp.Message
	conn *goamqp.Conn
	done chan struct{}
}

func receive(t testing.TB, url, address string) *receiver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := goamqp.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := s.NewReceiver(ctx, address, &goamqp.ReceiverOptions{Credit: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{conn: conn, done: make(chan struct{})}
	go r.loop(rcv)
	t.Cleanup(func() {
		conn.Close() // ends the loop; never close the link alone (it can hang)
		<-r.done
	})
	return r
}

func (r *receiver) loop(rcv *goamqp.Receiver) {
	defer close(r.done)
	const grant = 50
	for {
		if err := rcv.IssueCredit(grant); err != nil {
			return
		}
		for range grant {
			m, err := rcv.Receive(context.Background(), nil)
			if err != nil {
				return
			}
			if err := rcv.AcceptMessage(context.Background(), m); err != nil {
				return
			}
			r.mu.Lock()
			r.got = append(r.got, m)
			r.mu.Unlock()
		}
	}
}

func (r *receiver) messages() []*goamqp.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*goamqp.Message(nil), r.got...)
}

// hubMessage decodes what the endpoint sent back into the fields the
// conformance suite compares.
func hubMessage(m *goamqp.Message) *hubkit.Message {
	h := &hubkit.Message{Body: m.GetData()}
	if m.Properties != nil {
		if id, ok := m.Properties.MessageID.(string); ok {
			h.System.MessageID = id
		}
	}
	for k, v := range m.ApplicationProperties {
		s, _ := v.(string)
		h.Properties = append(h.Properties, hubkit.Property{Name: k, Value: s})
	}
	return h
}

// proxy forwards TCP connections to a broker and can cut or stall them.
type proxy struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex // guards the fields below
	conns   []net.Conn
	failing bool
	stalled chan struct{} // non-nil while stalled; closed to resume
	held    int           // reads from the endpoint waiting on stalled
	wg      sync.WaitGroup
}

func newProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.setFailing(true)
		p.setStalled(false)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		failing := p.failing
		p.mu.Unlock()
		if failing {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u, false)
		go p.pipe(u, c, true)
	}
}

// pipe copies src to dst; toBroker is true for the endpoint's side.
func (p *proxy) pipe(dst, src net.Conn, toBroker bool) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			stalled := p.stalled
			held := stalled != nil && toBroker
			if held {
				p.held++
			}
			p.mu.Unlock()
			if stalled != nil {
				<-stalled
			}
			if held {
				p.mu.Lock()
				p.held--
				p.mu.Unlock()
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				src.Close()
			}
			return
		}
	}
}

// setFailing cuts every connection and refuses new ones while on.
func (p *proxy) setFailing(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing = on
	if on {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// holding reports whether bytes from the endpoint wait for the stall to end.
func (p *proxy) holding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held > 0
}

// setStalled holds all traffic while on.
func (p *proxy) setStalled(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on && p.stalled == nil:
		p.stalled = make(chan struct{})
	case !on && p.stalled != nil:
		close(p.stalled)
		p.stalled = nil
	}
}
