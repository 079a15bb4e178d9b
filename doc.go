// Package hubkit is a library for building your own IoT hub: a Go program
// imports it and runs, in its own process, a hub with Azure IoT Hub's
// messaging semantics. Devices that speak to IoT Hub (the official SDKs,
// existing firmware) connect to it by changing only the host name.
//
// # Parts
//
// A hub is composed of small interfaces, each in the package named for it,
// with default implementations in sub-packages and a conformance suite
// that every implementation, a user's own included, runs from its tests:
//
//   - package hubkit (this one): [Message], its system and application
//     properties, validation with IoT Hub's size and character rules, and
//     the errors every part shares ([Error], with IoT Hub's codes).
//   - [github.com/hubkit/hubkit/queue]: DurableQueue, the store.
//     Partitioned append-only streams with cursors and retention for
//     device-to-cloud messages; per-device queues with locks, TTL,
//     delivery counts, dead-lettering and an outcome journal for
//     cloud-to-device messages and feedback; a key-value space for the
//     registry. queue/pebble is the default, queue/memory serves tests and
//     examples, queue/queuetest is the suite.
//   - [github.com/hubkit/hubkit/auth]: Authenticator; SAS tokens, shared
//     access policies, connection strings, X.509 (thumbprint and CA), the
//     device registry; auth/authtest.
//   - [github.com/hubkit/hubkit/broker]: Broker, and the Hub interface a
//     broker talks to; broker/mqtt (MQTT 3.1.1 and 5 over TCP, TLS and
//     WebSockets on mochi-mqtt), broker/https (IoT Hub's HTTPS device
//     API), broker/brokertest.
//   - [github.com/hubkit/hubkit/route]: Router; IoT Hub's routing query
//     language, routes, the fallback route, enrichments, dry runs;
//     route/routetest.
//   - [github.com/hubkit/hubkit/endpoint]: Endpoint and the delivery
//     engine that feeds each one from its own durable cursor with
//     batching, retries, health and counted drops; endpoint/amqp,
//     endpoint/webhook, endpoint/file, endpoint.Func; endpoint/endpointtest.
//   - [github.com/hubkit/hubkit/hub]: composes the parts: the D2C pipeline,
//     the built-in events endpoint with consumer groups, C2D with feedback,
//     the registry, device events; hub/service is the REST API.
//
// # Data flow
//
// A device publishes; its broker hands the message to the hub, which
// validates it, stamps the system properties IoT Hub stamps, routes it and
// appends one copy per matched endpoint stream in one durable write shared
// with every other message pending at that moment (group commit). Only
// then does the broker acknowledge (MQTT PUBACK, HTTP 204). The built-in
// events stream is read by consumer groups; every custom endpoint has a
// delivery loop of its own.
//
// The service sends a cloud-to-device message into the device's queue. A
// connected, subscribed device receives it; its PUBACK (or HTTPS DELETE)
// completes it. Every terminal outcome is journaled in the same write as
// the transition, and the hub turns outcomes into feedback records.
//
// # Guarantees
//
// What the hub acknowledged survives a crash of the process or of the
// machine: acknowledgements are sent only after the data is synced, and
// cloud-to-device state changes only by committed calls. Delivery is at
// least once: duplicates are possible, losses are not. A slow or dead
// endpoint never delays another and never loses what it was not given.
package hubkit
