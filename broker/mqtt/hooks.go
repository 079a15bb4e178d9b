package mqtt

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/internal/propbag"
)

// hooks adapts mochi's Hook interface to the broker. mochi calls every
// hook of a connection from that connection's read goroutine.
type hooks struct {
	mochi.HookBase
	b *Broker
}

func (h *hooks) ID() string { return "hubkit" }

func (h *hooks) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mochi.OnConnect, mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnSessionEstablish,
		mochi.OnSessionEstablished, mochi.OnDisconnect, mochi.OnPacketRead, mochi.OnPublish,
		mochi.OnSubscribe, mochi.OnUnsubscribe, mochi.OnPacketProcessed, mochi.OnWill, mochi.OnPacketEncode,
	}, []byte{b})
}

func (h *hooks) conn(cl *mochi.Client) *conn {
	if v, ok := h.b.conns.Load(cl.Net.Conn); ok {
		return v.(*conn)
	}
	return nil
}

// maxKeepAliveTimeout is the longest a connection may stay silent: Azure's
// load balancer idle timeout (mqtt.md §2.2).
const maxKeepAliveTimeout = 1767 * time.Second

// OnConnect admits or refuses a CONNECT. mochi only knows how to refuse
// with "bad username or password", so a refusal is answered here with the
// CONNACK code IoT Hub uses, and the error makes mochi close the connection.
func (h *hooks) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	c, code, err := h.b.admit(cl, pk)
	if err != nil {
		v5 := cl.Properties.ProtocolVersion == 5
		rc := code.v3
		if v5 {
			rc = code.v5
		}
		h.b.log.Info("connection refused", "client_id", pk.Connect.ClientIdentifier, "remote", cl.Net.Remote, "err", err)
		_ = h.b.server.SendConnack(cl, rc, false, nil)
		return rc
	}
	h.b.conns.Store(cl.Net.Conn, c)
	return nil
}

// refusal pairs the MQTT 3.1.1 and MQTT 5 CONNACK codes of a refusal.
type refusal struct{ v3, v5 packets.Code }

var (
	refuseNotAuthorized = refusal{packets.Err3NotAuthorized, packets.ErrNotAuthorized}
	refuseClientID      = refusal{packets.Err3ClientIdentifierNotValid, packets.ErrClientIdentifierNotValid}
	refuseUnavailable   = refusal{packets.Err3ServerUnavailable, packets.ErrServerUnavailable}
)

// admit checks a CONNECT (mqtt.md §2) and authenticates it with the hub.
func (b *Broker) admit(cl *mochi.Client, pk packets.Packet) (*conn, refusal, error) {
	if b.draining.Load() {
		return nil, refuseUnavailable, errShutdown
	}
	device, module, ok := splitClientID(pk.Connect.ClientIdentifier)
	if !ok {
		return nil, refuseClientID, fmt.Errorf("client id %q is not deviceId or deviceId/moduleId", pk.Connect.ClientIdentifier)
	}
	u, err := parseUsername(string(pk.Connect.Username))
	if err != nil {
		return nil, refuseNotAuthorized, err
	}
	if u.device != device || u.module != module {
		return nil, refuseNotAuthorized, errors.New("username names another identity than the client id")
	}
	if b.opts.HostName != "" && !sameHost(u.host, b.opts.HostName) {
		return nil, refuseNotAuthorized, fmt.Errorf("username names host %q", u.host)
	}
	if pk.Connect.WillFlag {
		if kind, _ := classifyTopic(pk.Connect.WillTopic, device, module); kind != topicTelemetry {
			return nil, refuseNotAuthorized, errors.New("will topic is not the identity's telemetry topic")
		}
	}
	cred := auth.Credentials{
		Protocol:   auth.MQTT,
		DeviceID:   device,
		ModuleID:   module,
		Username:   string(pk.Connect.Username),
		Password:   string(pk.Connect.Password),
		RemoteAddr: cl.Net.Remote,
	}
	nc := cl.Net.Conn
	if ws, ok := nc.(*wsConn); ok {
		nc = ws.NetConn()
	}
	if tc, ok := nc.(*tls.Conn); ok {
		cred.PeerCertificates = tc.ConnectionState().PeerCertificates
	}
	ctx, cancel := context.WithTimeout(b.admitCtx, b.opts.ConnectTimeout)
	defer cancel()
	id, err := b.hub.Authenticate(ctx, cred)
	if err != nil {
		if errors.Is(err, auth.ErrDenied) {
			return nil, refuseNotAuthorized, err
		}
		return nil, refuseUnavailable, err
	}
	if id.DeviceID != device || id.ModuleID != module {
		return nil, refuseNotAuthorized, errors.New("authenticated as another identity than the client id")
	}
	if id.ExpiresAt != 0 && time.Now().Unix() >= id.ExpiresAt {
		return nil, refuseNotAuthorized, errExpired
	}
	// Keep-alive (mqtt.md §2.2): 1.5 x the client's, at most 1767 s, which
	// also applies when the client asks for none. mochi applies 1.5 x. An
	// MQTT 5 client whose value we change is told ours in the CONNACK's
	// Server Keep Alive, which mochi sends when ServerKeepalive is set.
	ka := cl.State.Keepalive
	if ka == 0 || time.Duration(ka)*3/2*time.Second > maxKeepAliveTimeout {
		ka = uint16(maxKeepAliveTimeout * 2 / 3 / time.Second)
		cl.State.ServerKeepalive = cl.Properties.ProtocolVersion == 5
	}
	cl.State.Keepalive = ka
	cctx, ccancel := context.WithCancel(b.ctx)
	return &conn{
		b:      b,
		cl:     cl,
		id:     id,
		key:    pk.Connect.ClientIdentifier,
		schema: u.modelID,
		clean:  pk.Connect.Clean,
		slots:  make(chan struct{}, b.opts.MaxInflight),
		ctx:    cctx,
		cancel: ccancel,
		ended:  make(chan struct{}),
	}, refusal{}, nil
}

// OnConnectAuthenticate accepts: OnConnect already authenticated.
func (h *hooks) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool { return true }

// OnACLCheck allows: OnPublish and OnSubscribe check topics themselves.
func (h *hooks) OnACLCheck(cl *mochi.Client, topic string, write bool) bool { return true }

// OnSessionEstablish makes the connection its identity's only one: an older
// connection is closed and torn down (its C2D deliveries released, its
// disconnection reported) before this one is reported connected.
func (h *hooks) OnSessionEstablish(cl *mochi.Client, pk packets.Packet) {
	c := h.conn(cl)
	if c == nil {
		return
	}
	b := h.b
	b.mu.Lock()
	old := b.byIdentity[c.key]
	b.byIdentity[c.key] = c
	if c.clean {
		delete(b.sessions, c.key)
	} else {
		_, c.present = b.sessions[c.key]
	}
	b.mu.Unlock()
	if old != nil {
		old.logger().Info("connection replaced by a new one")
		old.close(errReplaced)
		old.teardown()
	}
}

// OnPacketEncode sets the Session Present flag of a successful CONNACK
// from the session we keep (mqtt.md §2.1): mochi computes it from its own
// memory of the client, which it drops a second after the client leaves,
// while our cleanSession=0 subscription lives on. It runs on the
// goroutine writing the packet; for CONNACK that is the read goroutine,
// after OnSessionEstablish.
func (h *hooks) OnPacketEncode(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Connack || pk.ReasonCode != packets.CodeSuccess.Code {
		return pk
	}
	if c := h.conn(cl); c != nil {
		pk.SessionPresent = c.present
	}
	return pk
}

// OnSessionEstablished runs after CONNACK: it reports the connection and
// resumes C2D delivery of a persistent session subscribed before.
func (h *hooks) OnSessionEstablished(cl *mochi.Client, pk packets.Packet) {
	c := h.conn(cl)
	if c == nil {
		return
	}
	b := h.b
	c.reportMu.Lock()
	if c.gone { // closed before it was reported: nothing to resume
		c.reportMu.Unlock()
		return
	}
	c.reported = true
	b.hub.Connected(c.ctx, c.id)
	c.reportMu.Unlock()
	if c.id.ExpiresAt != 0 {
		d := time.Until(time.Unix(c.id.ExpiresAt, 0))
		c.mu.Lock()
		c.expiry = time.AfterFunc(d, func() {
			c.logger().Info("SAS token expired; closing the connection")
			c.close(errExpired)
		})
		c.mu.Unlock()
	}
	c.logger().Debug("connected", "remote", cl.Net.Remote, "clean_session", c.clean)
	if c.clean {
		return
	}
	b.mu.Lock()
	qos, ok := b.sessions[c.key]
	b.mu.Unlock()
	if ok {
		c.mu.Lock()
		c.subs = append(c.subs, "devices/"+c.id.DeviceID+"/messages/devicebound/#")
		c.mu.Unlock()
		c.startC2D(qos)
	}
}

// OnDisconnect tears the connection's state down.
func (h *hooks) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	if c := h.conn(cl); c != nil {
		c.logger().Debug("disconnected", "err", err)
		c.teardown()
	}
}

// OnPacketRead sees every packet first: QoS 2 closes the connection before
// mochi would downgrade it, and PUBACKs settle C2D deliveries (mochi
// ignores them: it never sent those packets).
func (h *hooks) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if pk.FixedHeader.Qos > 1 {
			if c := h.conn(cl); c != nil {
				c.logger().Info("closing the connection: QoS 2 is not supported", "topic", pk.TopicName)
			}
			return pk, packets.ErrRejectPacket // ends the connection
		}
	case packets.Puback:
		if c := h.conn(cl); c != nil {
			c.puback(pk.PacketID)
		}
	}
	return pk, nil
}

// OnPublish takes every PUBLISH away from mochi: telemetry goes to the hub
// and is acknowledged once durable; anything else closes the connection.
func (h *hooks) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	c := h.conn(cl)
	if c == nil {
		cl.Stop(errDisconnected)
		return pk, packets.ErrRejectPacket
	}
	if h.b.draining.Load() {
		c.close(errShutdown) // the device sends it again to the next hub
		return pk, packets.ErrRejectPacket
	}
	kind, bag := classifyTopic(pk.TopicName, c.id.DeviceID, c.id.ModuleID)
	var err error
	switch kind {
	case topicTelemetry:
		err = c.publish(pk, bag)
	case topicIgnored:
		c.ignore(pk)
	default:
		err = errors.New("topic is not one the identity may publish to")
	}
	if err != nil {
		if errors.Is(err, hubkit.ErrMessageTooLarge) || c.ctx.Err() == nil {
			c.logger().Info("closing the connection: bad PUBLISH", "topic", pk.TopicName, "err", err)
		}
		c.close(err)
	}
	return pk, packets.ErrRejectPacket
}

// maxSubscriptions is how many subscriptions a connection may hold.
const maxSubscriptions = 5

// OnSubscribe checks the filters (mqtt.md §3.2) and grants at most QoS 1.
// A filter that is not allowed, or a sixth subscription, closes the
// connection. C2D delivery starts after the SUBACK (OnPacketProcessed).
func (h *hooks) OnSubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	c := h.conn(cl)
	if c == nil {
		return pk
	}
	c.mu.Lock()
	subs := c.subs
	var err error
	for i := range pk.Filters {
		f := &pk.Filters[i]
		if classifyFilter(f.Filter, c.id.DeviceID, c.id.ModuleID) == filterOther {
			err = fmt.Errorf("filter %q is not allowed", f.Filter)
			break
		}
		if f.Qos > 1 {
			f.Qos = 1
		}
		if !contains(subs, f.Filter) {
			subs = append(subs, f.Filter)
		}
	}
	if err == nil && len(subs) > maxSubscriptions {
		err = fmt.Errorf("more than %d subscriptions", maxSubscriptions)
	}
	if err == nil {
		c.subs = subs
	}
	c.mu.Unlock()
	if err != nil {
		c.logger().Info("closing the connection: bad SUBSCRIBE", "err", err)
		c.close(err)
		pk.Filters = nil
	}
	return pk
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// OnPacketProcessed starts C2D delivery once the SUBACK of a devicebound
// subscription is written, and remembers the subscription of a persistent
// session for the next connection.
func (h *hooks) OnPacketProcessed(cl *mochi.Client, pk packets.Packet, err error) {
	if pk.FixedHeader.Type != packets.Subscribe || err != nil {
		return
	}
	c := h.conn(cl)
	if c == nil {
		return
	}
	for _, f := range pk.Filters {
		if classifyFilter(f.Filter, c.id.DeviceID, c.id.ModuleID) != filterC2D {
			continue
		}
		qos := min(f.Qos, 1)
		if !c.clean {
			h.b.mu.Lock()
			h.b.sessions[c.key] = qos
			h.b.mu.Unlock()
		}
		c.startC2D(qos)
	}
}

// OnUnsubscribe forgets the filters; unsubscribing from devicebound stops
// C2D delivery and releases what was not acknowledged.
func (h *hooks) OnUnsubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	c := h.conn(cl)
	if c == nil {
		return pk
	}
	for _, f := range pk.Filters {
		c.mu.Lock()
		for i, s := range c.subs {
			if s == f.Filter {
				c.subs = append(c.subs[:i], c.subs[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		if classifyFilter(f.Filter, c.id.DeviceID, c.id.ModuleID) == filterC2D {
			h.b.mu.Lock()
			delete(h.b.sessions, c.key)
			h.b.mu.Unlock()
			c.stopC2D()
		}
	}
	return pk
}

// OnWill sends the Will of a connection lost without DISCONNECT as
// telemetry with application property iothub-MessageType=Will, and keeps
// mochi from delivering it anywhere else.
func (h *hooks) OnWill(cl *mochi.Client, will mochi.Will) (mochi.Will, error) {
	c := h.conn(cl)
	if c == nil {
		return will, nil
	}
	_, bag := classifyTopic(will.TopicName, c.id.DeviceID, c.id.ModuleID) // checked at CONNECT
	msg := &hubkit.Message{Body: will.Payload}
	if err := propbag.Decode(bag, msg); err != nil {
		c.logger().Info("will message dropped", "err", err)
	} else {
		msg.Properties.Set("iothub-MessageType", "Will")
		msg.System.DataSchema = c.schema
		h.b.inflight.Add(1)
		h.b.hub.Ingest(h.b.ctx, c.id, msg, func(err error) {
			if err != nil {
				c.logger().Warn("will message refused", "err", err)
			}
			h.b.done(1)
		})
	}
	will.TopicName = "$hubkit/will-sent" // nobody can subscribe to it
	return will, nil
}
