// Package mqtt is the MQTT face of a hub: it speaks IoT Hub's MQTT dialect
// (MQTT 3.1.1 and 5, over TCP, TLS and WebSockets) on top of the
// mochi-mqtt engine, and implements [broker.Broker].
//
// Devices connect with client id deviceId (or deviceId/moduleId), a
// username host/deviceId/?api-version=... and a SAS token as password or
// a TLS client certificate; the hub's Authenticator decides. They publish
// telemetry on devices/{id}/messages/events/{property bag} and receive
// cloud-to-device messages on devices/{id}/messages/devicebound/{bag}.
// Nothing else exists: no device-to-device routing, no retained messages,
// no QoS 2. What a device may not do closes its connection, as IoT Hub does.
//
// # Guarantees
//
// A QoS 1 PUBLISH is acknowledged only once the hub reports the message
// durable, because the device deletes its copy on PUBACK. The read loop of
// a connection never waits for storage: messages are handed to the hub
// asynchronously, up to [Options.MaxInflight] per connection, and their
// PUBACKs go out in PUBLISH order, those that become ready together in one
// write.
//
// Cloud-to-device messages live in the hub's queue, never in the MQTT
// engine's session store: a connection subscribed to devicebound receives
// up to 10 unacknowledged messages at a time; a PUBACK completes one, and
// whatever is unacknowledged when the connection ends goes back to the
// queue and is delivered again, with DUP set, on the next connection. A
// persistent session's subscription (cleanSession=0) outlives its
// connection, because the Azure IoT SDKs reconnect to renew their token
// without subscribing again; the CONNACK of a cleanSession=0 connection
// has Session Present set exactly when such a subscription was kept.
//
// Twin and direct-method topics are accepted and ignored for now.
//
// # Memory
//
// An idle connected device costs about 28 KiB: 5 KiB of heap and the
// stacks of the two goroutines the MQTT engine runs per connection. The
// read goroutine's stack grows to 16 KiB while the engine answers CONNECT
// and never shrinks back, because the engine's frames it stays parked in
// use more than a quarter of it; the write goroutine's starts at the
// runtime's average stack size (8 KiB). A program serving many devices
// can save 3 KiB per connection with //go:debug adaptivestackstart=0 in
// its main package, which starts every goroutine at 2 KiB.
package mqtt
