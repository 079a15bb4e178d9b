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
// without subscribing again.
//
// Twin and direct-method topics are accepted and ignored for now.
package mqtt
