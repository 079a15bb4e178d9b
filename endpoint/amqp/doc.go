// Package amqp is an [endpoint.Endpoint] that sends messages to an AMQP 1.0
// node: a broker queue or exchange, an Event Hubs entity, a Service Bus
// queue or topic.
//
// Messages are sent unsettled and durable, so a message counts as accepted
// only once the peer answered Accepted (at-least-once); within one batch
// they are pipelined (SendWithReceipt) and the receipts awaited in order.
// go-amqp does not reconnect: after any connection, session or link error
// the Endpoint drops the connection, and the next Send dials again, so a
// broker restart costs only the delivery engine's retries.
//
// # Message mapping
//
// System properties go where IoT Hub puts them (messages.md §2):
// message-id, correlation-id, user-id, to, content-type, content-encoding,
// absolute-expiry-time and creation-time in the AMQP properties section;
// iothub-enqueuedtime (a timestamp), iothub-connection-device-id,
// iothub-connection-module-id, iothub-connection-auth-generation-id,
// iothub-connection-auth-method, iothub-message-source,
// iothub-creation-time-utc, iothub-interface-id, dt-dataschema and
// dt-subject in the message annotations; application properties as
// string application-properties. The body is one data section.
//
// creation-time is the device's iothub-creation-time-utc when it is an
// RFC 3339 time, else the enqueued time. The x-opt-partition-key
// annotation carries the device id, so that a partitioned Event Hubs
// entity keeps each device's messages in one partition, in order.
package amqp
