package bench_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/auth"
)

// client is a lean MQTT 3.1.1 client, so that on a 2-core machine the
// load generator costs as little as possible and the same for every
// server it drives. It encodes PUBLISH and PUBACK by hand; the rarer
// packets go through mochi's encoder.
type client struct {
	c  net.Conn
	r  *bufio.Reader
	wm sync.Mutex // guards writes
}

// dial connects and sends CONNECT with a clean session; it returns once
// the server accepted.
func dial(addr, clientID, user, password string) (*client, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &client{c: nc, r: bufio.NewReaderSize(nc, 16<<10)}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 600,
			ClientIdentifier: clientID,
			UsernameFlag:     user != "", Username: []byte(user),
			PasswordFlag: password != "", Password: []byte(password),
		},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.write(buf.Bytes()); err != nil {
		nc.Close()
		return nil, err
	}
	typ, _, body, err := c.read()
	if err != nil || typ != packets.Connack || len(body) != 2 || body[1] != 0 {
		nc.Close()
		return nil, fmt.Errorf("CONNACK %d % x: %v", typ, body, err)
	}
	return c, nil
}

// dialDevice connects as an IoT Hub device with a SAS token.
func dialDevice(addr, host, deviceID, key string) (*client, error) {
	token, err := auth.ConnectionString{HostName: host, DeviceID: deviceID, SharedAccessKey: key}.Token(time.Now().Add(24 * time.Hour))
	if err != nil {
		return nil, err
	}
	return dial(addr, deviceID, host+"/"+deviceID+"/?api-version=2021-04-12", token)
}

// subscribe subscribes to filter at QoS 1 and waits for the SUBACK. Call
// it before any reader goroutine runs.
func (c *client) subscribe(filter string) error {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: 4, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: filter, Qos: 1}},
	}
	var buf bytes.Buffer
	if err := pk.SubscribeEncode(&buf); err != nil {
		return err
	}
	if err := c.write(buf.Bytes()); err != nil {
		return err
	}
	typ, _, body, err := c.read()
	if err != nil || typ != packets.Suback || len(body) != 3 || body[2] > 1 {
		return fmt.Errorf("SUBACK %d % x: %v", typ, body, err)
	}
	return nil
}

func (c *client) write(b []byte) error {
	c.wm.Lock()
	defer c.wm.Unlock()
	_, err := c.c.Write(b)
	return err
}

func (c *client) close() { c.c.Close() }

// read reads one packet: its type, the flags of its fixed header and its
// body, which stays valid until the next read.
func (c *client) read() (typ, flags byte, body []byte, err error) {
	h, err := c.r.ReadByte()
	if err != nil {
		return 0, 0, nil, err
	}
	n, shift := 0, 0
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, 0, nil, err
		}
		n |= int(b&0x7f) << shift
		if b < 0x80 {
			break
		}
		if shift += 7; shift > 21 {
			return 0, 0, nil, errors.New("malformed remaining length")
		}
	}
	body, err = c.r.Peek(n)
	if err == bufio.ErrBufferFull {
		body = make([]byte, n)
		_, err = io.ReadFull(c.r, body)
		return h >> 4, h & 0x0f, body, err
	}
	if err != nil {
		return 0, 0, nil, err
	}
	c.r.Discard(n)
	return h >> 4, h & 0x0f, body, nil
}

// appendPublish appends a QoS 1 PUBLISH.
func appendPublish(dst []byte, topic string, pid uint16, payload []byte) []byte {
	dst = append(dst, packets.Publish<<4|1<<1)
	dst = appendLength(dst, 2+len(topic)+2+len(payload))
	dst = append(dst, byte(len(topic)>>8), byte(len(topic)))
	dst = append(dst, topic...)
	dst = append(dst, byte(pid>>8), byte(pid))
	return append(dst, payload...)
}

func appendLength(dst []byte, n int) []byte {
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			return dst
		}
	}
}

// publishBody splits the body of a PUBLISH into topic, packet id (0 at
// QoS 0) and payload.
func publishBody(flags byte, body []byte) (topic string, pid uint16, payload []byte, err error) {
	if len(body) < 2 {
		return "", 0, nil, errors.New("short PUBLISH")
	}
	n := int(body[0])<<8 | int(body[1])
	if len(body) < 2+n {
		return "", 0, nil, errors.New("short PUBLISH topic")
	}
	topic, rest := string(body[2:2+n]), body[2+n:]
	if flags>>1&3 > 0 {
		if len(rest) < 2 {
			return "", 0, nil, errors.New("short PUBLISH packet id")
		}
		pid, rest = uint16(rest[0])<<8|uint16(rest[1]), rest[2:]
	}
	return topic, pid, rest, nil
}

func puback(pid uint16) []byte { return []byte{packets.Puback << 4, 2, byte(pid >> 8), byte(pid)} }
