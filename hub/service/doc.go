// Package service serves a hub's service-side REST API over HTTP: the
// device registry, cloud-to-device messages and their feedback, the
// built-in events endpoint, health and metrics. It is an [http.Handler]
// that the embedding program mounts on its own server, with TLS, where it
// likes:
//
//	h, _ := hub.New(cfg)
//	_ = h.Start(ctx)
//	srv := &http.Server{Addr: ":8443", Handler: service.New(h, service.Options{})}
//
// With Options.Devices set to the HTTPS device API of broker/https, the
// two APIs share one port, as on IoT Hub.
//
// # Authorization
//
// Every route but /health and /metrics needs an
// "Authorization: SharedAccessSignature sr=<host>&sig=...&se=...&skn=<policy>"
// header: a token signed by one of the hub's shared access policies (see
// [hub.Hub.Policies]) that holds the route's permission. A missing, bad or
// expired token, or one whose policy lacks the permission, is answered 401
// IotHubUnauthorized.
//
// # Routes
//
// Fixed path segments compare case-insensitively; ids are URL-decoded. An
// api-version query parameter is accepted and ignored.
//
//	| Method | Path                                                          | Permission     | Answer |
//	|--------|---------------------------------------------------------------|----------------|--------|
//	| PUT    | /devices/{id}                                                 | RegistryWrite  | 200 device JSON and ETag; creates, or with If-Match replaces |
//	| GET    | /devices/{id}                                                 | RegistryRead   | 200 device JSON and ETag |
//	| DELETE | /devices/{id}                                                 | RegistryWrite  | 204; If-Match optional ("*" or the etag) |
//	| GET    | /devices?top={n}                                              | RegistryRead   | 200 JSON array of up to n (1-1000, default 1000) devices; x-ms-continuation pages (below) |
//	| PUT    | /devices/{id}/modules/{moduleId}                              | RegistryWrite  | 200 module JSON and ETag; creates, or with If-Match replaces |
//	| GET    | /devices/{id}/modules/{moduleId}                              | RegistryRead   | 200 module JSON and ETag |
//	| DELETE | /devices/{id}/modules/{moduleId}                              | RegistryWrite  | 204; If-Match optional ("*" or the etag) |
//	| GET    | /devices/{id}/modules                                         | RegistryRead   | 200 JSON array of the device's modules |
//	| POST   | /devices/{id}/messages/devicebound                            | ServiceConnect | 204; body and iothub-* headers make the C2D message |
//	| DELETE | /devices/{id}/commands                                        | ServiceConnect | 200 {"deviceId","moduleId":null,"totalMessagesPurged"} |
//	| GET    | /messages/serviceBound/feedback?timeout={d}                   | ServiceConnect | 200 JSON array of feedback records, ETag = lock token; 204 when none came within d (default 0) |
//	| DELETE | /messages/serviceBound/feedback/{lockToken}                   | ServiceConnect | 204: completes the feedback message |
//	| POST   | /messages/serviceBound/feedback/{lockToken}/abandon           | ServiceConnect | 204: abandons it |
//	| GET    | /messages/events/consumerGroups                               | ServiceConnect | 200 JSON array of consumer group names |
//	| PUT    | /messages/events/consumerGroups/{group}                       | ServiceConnect | 201 |
//	| DELETE | /messages/events/consumerGroups/{group}                       | ServiceConnect | 204 |
//	| GET    | /messages/events/consumerGroups/{group}/partitions/{p}?...    | ServiceConnect | 200 JSON array of events (see below) |
//	| GET    | /messages/events/consumerGroups/{group}/partitions/{p}/checkpoint | ServiceConnect | 200 {"sequenceNumber": next to read} or 404 |
//	| POST   | /messages/events/consumerGroups/{group}/partitions/{p}/checkpoint | ServiceConnect | 204; body {"sequenceNumber": n}: events up to n are processed |
//	| GET    | /routing/endpointsHealth                                      | ServiceConnect | 200 {"value":[{"endpointId","healthStatus","lastKnownError",...}]} per custom endpoint |
//	| GET    | /health                                                       | none           | 200 {"status":"ok"}, or 503 when the hub is not running |
//	| GET    | /metrics                                                      | none           | 200 Prometheus text format |
//
// A device listing whose page is full answers an x-ms-continuation
// header; sending it back on the next request, with the same top, gives
// the next page. The last page has no such header (and may be empty).
//
// The C2D send reads iothub-messageid, iothub-correlationid, iothub-userid,
// iothub-ack, iothub-expiry (ISO 8601 UTC), iothub-contenttype,
// iothub-contentencoding and one iothub-app-{name} header per application
// property (names arrive lower-cased, as HTTP does not keep their case).
//
// Reading events takes its start position from one query parameter:
// from=checkpoint (the default), from=earliest, from=latest,
// offset={o}, sequenceNumber={n} or enqueuedTime={ISO 8601}; with
// inclusive=true an offset or sequence number includes that event. max
// (1-1000, default 100) bounds the answer and timeout (a Go duration,
// default 5s, above 0 and at most 60s) how long the request waits for a first event;
// with none by then the answer is an empty array. Each event is
// {"partition","offset","sequenceNumber","enqueuedTimeUtc",
// "systemProperties":{name: value}, "properties":{name: value}, "body":
// base64}, with system properties under their AMQP names
// (message-id, iothub-connection-device-id, ...).
//
// # Errors
//
// Errors are answered as IoT Hub answers them: the HTTP status of the
// six-digit code, an iothub-errorcode header with its name and a JSON
// body {"Message":"ErrorCode:<Name>;<text>","ExceptionMessage":"Tracking ID:..."}.
package service
