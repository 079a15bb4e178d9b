// Package https serves IoT Hub's HTTPS device API: devices send
// device-to-cloud messages and poll, complete, reject and abandon
// cloud-to-device messages over plain HTTPS requests, as the Azure IoT
// device SDKs do with their HTTP transport.
//
// A [Broker] either listens on its own TLS socket ([Broker.Start]) or hands
// out an [http.Handler] ([Broker.Handler]) that an embedding program mounts
// on its own server.
//
// # Routes
//
//	POST   /devices/{id}/messages/events                          send one message, or a batch
//	GET    /devices/{id}/messages/deviceBound                     receive (200 or 204)
//	DELETE /devices/{id}/messages/deviceBound/{lockToken}         complete
//	DELETE /devices/{id}/messages/deviceBound/{lockToken}?reject  reject
//	POST   /devices/{id}/messages/deviceBound/{lockToken}/abandon abandon
//
// Every request needs an api-version query parameter (any value) and
// credentials: a SAS token in the Authorization header, or a TLS client
// certificate. Fixed path segments compare case-insensitively; the device
// id and the lock token are URL-decoded.
//
// # Properties
//
// A message's system properties travel in iothub-* headers and each
// application property in an iothub-app-{name} header. HTTP header names
// are case-insensitive and Go's server does not keep their case, so
// application property names arrive lower-cased, as they do at IoT Hub over
// HTTP. Names and values of application properties must be HTTP tokens
// (ASCII letters, digits and !#$%&'*+-.^_`|~).
//
// # Acknowledgement
//
// A send is answered 204 only once the hub reports every message of the
// request durable (see [broker.Hub.Ingest]); a refused message is answered
// with IoT Hub's error status, iothub-errorcode header and JSON body.
//
// HTTPS devices hold no session: every request is authenticated on its own,
// so a disabled device is refused from its next request on, and the broker
// reports no connection-state changes to the hub.
package https
