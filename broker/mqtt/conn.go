package mqtt

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/internal/propbag"
	"github.com/hubkit/hubkit/queue"
)

// c2dWindow is how many C2D messages may await a PUBACK on one connection,
// as IoT Edge and the protocol gateway allow.
const c2dWindow = 10

// c2dLock is how long a delivered C2D message stays locked to its
// connection; a device that has not acknowledged it by then may get it
// again. Releases on disconnect end the lock sooner.
const c2dLock = time.Minute

// conn is the broker's state of one MQTT connection past CONNECT.
//
// Lock order: conn.mu, then Broker.mu. Neither is held while calling the hub
// or writing to the network, except that writes hold the mochi client's
// lock, which nothing else is taken under.
type conn struct {
	b      *Broker
	cl     *mochi.Client
	id     auth.Identity
	key    string // client id: device or device/module
	schema string // model-id of the username: dt-dataschema
	clean  bool
	// present is the CONNACK's Session Present: cleanSession=0 and a
	// stored C2D subscription. Set by OnSessionEstablish before CONNACK,
	// on the read goroutine, and read only there.
	present bool
	slots   chan struct{} // one per QoS 1 message awaiting its PUBACK

	ctx    context.Context // ends at teardown
	cancel context.CancelFunc
	once   sync.Once // teardown
	ended  chan struct{}

	reportMu sync.Mutex // held while reporting Connected or Disconnected, so that they come in order
	reported bool       // Connected was reported; guarded by reportMu
	gone     bool       // teardown ran; guarded by reportMu

	mu       sync.Mutex // guards the fields below
	pend     []pendingAck
	head     uint64   // sequence number of pend[0]
	next     uint64   // sequence number of the next pendingAck
	acks     []uint16 // PUBACKs ready to write, in PUBLISH order
	flushing bool     // a flush goroutine runs
	subs     []string // accepted subscription filters
	c2d      *delivery
	expiry   *time.Timer
}

type pendingAck struct {
	id    uint16
	ready bool
	drop  bool // the message was refused: no PUBACK
}

func (c *conn) logger() *slog.Logger {
	return c.b.log.With("device_id", c.id.DeviceID, "module_id", c.id.ModuleID)
}

// closeWriteTimeout bounds the DISCONNECT written to an MQTT 5 client on
// close: a device that does not read must not hold the closer.
const closeWriteTimeout = time.Second

// close ends the connection; mochi then calls OnDisconnect. MQTT 5 clients
// are told why with a DISCONNECT reason code, unless writing it takes
// longer than closeWriteTimeout. close returns within about that time.
func (c *conn) close(err error) {
	if c.cl.Properties.ProtocolVersion == 5 {
		// A write deadline would not do: a write in progress (a C2D
		// PUBLISH) holds the client's lock, and gorilla's WebSocket sets
		// its own deadline on each write. Closing the socket ends both.
		t := time.AfterFunc(closeWriteTimeout, func() { c.cl.Stop(err) })
		defer t.Stop()
		code := packets.ErrUnspecifiedError
		switch {
		case errors.Is(err, errDisconnected), errors.Is(err, errExpired):
			code = packets.ErrNotAuthorized
		case errors.Is(err, errReplaced):
			code = packets.ErrSessionTakenOver
		case errors.Is(err, errShutdown):
			code = packets.ErrServerShuttingDown
		}
		_ = c.b.server.DisconnectClient(c.cl, code)
	}
	c.cl.Stop(err)
}

// write writes b to the connection in one write, under the client's lock
// so that it does not interleave with mochi's own writes.
func (c *conn) write(b []byte) error {
	c.cl.Lock()
	defer c.cl.Unlock()
	if c.cl.Closed() {
		return mochi.ErrConnectionClosed
	}
	_, err := c.cl.Net.Conn.Write(b)
	return err
}

// publish handles a telemetry PUBLISH on the read loop: it hands the
// message to the hub and returns; the PUBACK follows once it is durable.
// It returns an error when the connection must close.
func (c *conn) publish(pk packets.Packet, bag string) error {
	msg := &hubkit.Message{Body: pk.Payload}
	if err := propbag.Decode(bag, msg); err != nil {
		return err
	}
	if pk.FixedHeader.Retain {
		msg.Properties.Set("mqtt-retain", "true")
	}
	if pk.FixedHeader.Dup {
		msg.Properties.Set("mqtt-dup", "true")
	}
	msg.System.DataSchema = c.schema
	if err := hubkit.ValidateD2C(msg); err != nil {
		return err
	}
	if pk.FixedHeader.Qos == 0 {
		c.b.inflight.Add(1)
		c.b.hub.Ingest(c.ctx, c.id, msg, func(err error) {
			if err != nil {
				c.logger().Warn("device-to-cloud message refused", "err", err)
			}
			c.b.done(1)
		})
		return nil
	}
	select { // at most MaxInflight awaiting PUBACK: stop reading until one is written
	case c.slots <- struct{}{}:
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	seq := c.queueAck(pk.PacketID)
	c.b.hub.Ingest(c.ctx, c.id, msg, func(err error) { c.ackReady(seq, err) })
	return nil
}

// queueAck reserves the PUBACK of packet id in PUBLISH order.
func (c *conn) queueAck(id uint16) uint64 {
	c.b.inflight.Add(1)
	c.mu.Lock()
	seq := c.next
	c.next++
	c.pend = append(c.pend, pendingAck{id: id})
	c.mu.Unlock()
	return seq
}

// ackReady is the done callback of a QoS 1 message: it moves the PUBACKs
// that are now in order to acks and makes sure a flush goroutine writes
// them. A refused message closes the connection without PUBACK.
func (c *conn) ackReady(seq uint64, err error) {
	c.mu.Lock()
	p := &c.pend[seq-c.head]
	p.ready, p.drop = true, err != nil
	dropped := 0
	for len(c.pend) > 0 && c.pend[0].ready {
		if c.pend[0].drop {
			dropped++
		} else {
			c.acks = append(c.acks, c.pend[0].id)
		}
		c.pend = c.pend[1:]
		c.head++
	}
	start := len(c.acks) > 0 && !c.flushing
	if start {
		c.flushing = true
	}
	c.mu.Unlock()
	if dropped > 0 {
		c.release(dropped)
	}
	if err != nil {
		c.logger().Warn("device-to-cloud message refused; closing the connection", "err", err)
		c.close(err)
	}
	if start && !c.b.goFunc(c.flush) {
		c.mu.Lock()
		n := len(c.acks)
		c.acks, c.flushing = c.acks[:0], false
		c.mu.Unlock()
		c.release(n)
	}
}

// release frees n in-flight slots of settled messages.
func (c *conn) release(n int) {
	for range n {
		<-c.slots
	}
	c.b.done(n)
}

// flush writes the ready PUBACKs, all that are ready at once in one write,
// until none is left. PUBACKs of messages committed together thus cost one
// syscall per connection, not one per message.
func (c *conn) flush() {
	runtime.Gosched() // let the hub finish calling back the rest of its batch
	var buf []byte
	var ids []uint16
	for {
		c.mu.Lock()
		ids, c.acks = c.acks, ids[:0]
		if len(ids) == 0 {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		buf = buf[:0]
		for _, id := range ids {
			buf = append(buf, packets.Puback<<4, 2, byte(id>>8), byte(id))
		}
		if err := c.write(buf); err != nil && !c.cl.Closed() {
			c.close(err)
		}
		c.release(len(ids))
	}
}

// ignore acknowledges, in order, a QoS 1 PUBLISH that is accepted but not
// processed (twin and method topics).
func (c *conn) ignore(pk packets.Packet) {
	if pk.FixedHeader.Qos == 0 {
		return
	}
	select {
	case c.slots <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	c.ackReady(c.queueAck(pk.PacketID), nil)
}

// teardown ends the connection's state: stops C2D delivery and releases
// what the device did not acknowledge, and reports the disconnection. It
// runs once; concurrent callers wait until it is done.
func (c *conn) teardown() {
	c.once.Do(func() {
		c.cl.Stop(errDisconnected)
		c.cancel()
		c.mu.Lock()
		d := c.c2d
		c.c2d = nil
		if c.expiry != nil {
			c.expiry.Stop()
		}
		c.mu.Unlock()
		if d != nil {
			d.stop(c)
		}
		b := c.b
		b.mu.Lock()
		if b.byIdentity[c.key] == c {
			delete(b.byIdentity, c.key)
		}
		b.mu.Unlock()
		b.conns.Delete(c.cl.Net.Conn)
		c.reportMu.Lock()
		c.gone = true
		if c.reported { // a connection torn down before its CONNACK was never reported
			b.hub.Disconnected(b.ctx, c.id)
		}
		c.reportMu.Unlock()
		close(c.ended)
	})
	<-c.ended
}

// delivery sends the device's C2D messages on one connection: a receiver
// goroutine locks messages and publishes them while the window has room, a
// settler goroutine completes what the device acknowledged.
type delivery struct {
	qos     byte
	cancel  context.CancelFunc
	window  chan struct{}     // one per message delivered and not yet settled
	acked   chan string       // lock tokens of PUBACKed messages, for the settler
	wg      sync.WaitGroup    // receiver and settler
	unacked map[uint16]string // packet id -> lock token; guarded by conn.mu
	pid     uint16            // last packet id used; receiver only
}

// startC2D starts delivering C2D messages at qos, unless already delivering.
func (c *conn) startC2D(qos byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c2d != nil || c.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	d := &delivery{
		qos:     qos,
		cancel:  cancel,
		window:  make(chan struct{}, c2dWindow),
		acked:   make(chan string, c2dWindow),
		unacked: make(map[uint16]string),
	}
	d.wg.Add(2)
	if !c.b.goFunc(func() { defer d.wg.Done(); c.receive(ctx, d) }) {
		d.wg.Done()
	}
	if !c.b.goFunc(func() { defer d.wg.Done(); c.settle(ctx, d) }) {
		d.wg.Done()
	}
	c.c2d = d
}

// stopC2D stops delivery, as on UNSUBSCRIBE.
func (c *conn) stopC2D() {
	c.mu.Lock()
	d := c.c2d
	c.c2d = nil
	c.mu.Unlock()
	if d != nil {
		d.stop(c)
	}
}

// stop ends the delivery goroutines and releases every message the device
// has not acknowledged, so that the next session gets them again in order.
func (d *delivery) stop(c *conn) {
	d.cancel()
	d.wg.Wait()
	c.mu.Lock()
	tokens := make([]string, 0, len(d.unacked))
	for _, t := range d.unacked {
		tokens = append(tokens, t)
	}
	clear(d.unacked)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.b.ctx, 10*time.Second)
	defer cancel()
	for _, t := range tokens {
		if err := c.b.hub.Settle(ctx, c.id.DeviceID, t, broker.Release); err != nil {
			c.logger().Warn("releasing an unacknowledged cloud-to-device message", "err", err)
		}
	}
}

// receive is the receiver goroutine.
func (c *conn) receive(ctx context.Context, d *delivery) {
	topic := []byte("devices/" + c.id.DeviceID + "/messages/devicebound/")
	var buf []byte
	for {
		select {
		case d.window <- struct{}{}:
		case <-ctx.Done():
			return
		}
		dl, err := c.b.hub.ReceiveC2D(ctx, c.id.DeviceID, queue.ReceiveOptions{Lock: c2dLock, Volatile: true})
		if err != nil {
			if ctx.Err() == nil {
				c.logger().Warn("receiving a cloud-to-device message; closing the connection", "err", err)
				c.close(err)
			}
			return
		}
		var pid uint16
		if d.qos > 0 {
			c.mu.Lock()
			for {
				d.pid++
				if _, used := d.unacked[d.pid]; d.pid != 0 && !used {
					break
				}
			}
			pid = d.pid
			d.unacked[pid] = dl.LockToken
			c.mu.Unlock()
		}
		buf = appendPublish(buf[:0], c.cl.Properties.ProtocolVersion == 5, d.qos, dl.Attempts > 1, pid,
			topic, &dl.Message)
		if err := c.write(buf); err != nil {
			if d.qos == 0 {
				c.releaseToken(dl.LockToken)
			}
			return // teardown releases what is unacknowledged
		}
		if d.qos == 0 {
			// QoS 0: the message is complete once written (mqtt.md §5).
			d.acked <- dl.LockToken
		}
	}
}

func (c *conn) releaseToken(token string) {
	ctx, cancel := context.WithTimeout(c.b.ctx, 10*time.Second)
	defer cancel()
	_ = c.b.hub.Settle(ctx, c.id.DeviceID, token, broker.Release)
}

// puback handles a PUBACK from the device, on the read loop.
func (c *conn) puback(id uint16) {
	c.mu.Lock()
	d := c.c2d
	var token string
	var ok bool
	if d != nil {
		token, ok = d.unacked[id]
		delete(d.unacked, id)
	}
	c.mu.Unlock()
	if ok {
		d.acked <- token // never blocks: at most c2dWindow tokens are outstanding
	}
}

// settle is the settler goroutine: it completes acknowledged messages and
// frees their place in the window. It takes every token acknowledged by
// then, so that PUBACKs that arrive while a completion waits for its sync
// are completed together, in one store write when the hub is a
// [broker.BatchCompleter]. Acknowledged messages are completed even while
// the delivery stops.
func (c *conn) settle(ctx context.Context, d *delivery) {
	tokens := make([]string, 0, c2dWindow)
	for {
		select {
		case t := <-d.acked:
			tokens = append(tokens[:0], t)
		case <-ctx.Done():
			c.complete(drain(d.acked, tokens[:0]))
			return
		}
		tokens = drain(d.acked, tokens)
		c.complete(tokens)
		for range tokens {
			<-d.window
		}
	}
}

// drain appends to dst the tokens waiting in ch, without blocking.
func drain(ch <-chan string, dst []string) []string {
	for {
		select {
		case t := <-ch:
			dst = append(dst, t)
		default:
			return dst
		}
	}
}

func (c *conn) complete(tokens []string) {
	if len(tokens) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.b.ctx, 10*time.Second)
	defer cancel()
	var errs []error
	if bc, ok := c.b.hub.(broker.BatchCompleter); ok {
		errs = bc.CompleteC2D(ctx, c.id.DeviceID, tokens)
	} else {
		for _, t := range tokens {
			errs = append(errs, c.b.hub.Settle(ctx, c.id.DeviceID, t, broker.Complete))
		}
	}
	for _, err := range errs {
		if err != nil {
			c.logger().Warn("completing a cloud-to-device message", "err", err)
		}
	}
}

// appendPublish appends a PUBLISH packet carrying msg on topic followed by
// its property bag.
func appendPublish(dst []byte, v5 bool, qos byte, dup bool, pid uint16, topic []byte, msg *hubkit.Message) []byte {
	name := propbag.AppendC2D(append([]byte(nil), topic...), msg) // topic name with its bag
	n := 2 + len(name) + len(msg.Body)
	if qos > 0 {
		n += 2
	}
	if v5 {
		n++ // empty property list
	}
	h := byte(packets.Publish<<4) | qos<<1
	if dup {
		h |= 0x08
	}
	dst = append(dst, h)
	for { // remaining length, variable byte integer
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			break
		}
	}
	dst = append(dst, byte(len(name)>>8), byte(len(name)))
	dst = append(dst, name...)
	if qos > 0 {
		dst = append(dst, byte(pid>>8), byte(pid))
	}
	if v5 {
		dst = append(dst, 0)
	}
	return append(dst, msg.Body...)
}
