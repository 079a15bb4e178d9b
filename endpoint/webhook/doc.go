// Package webhook is an [endpoint.Endpoint] that POSTs messages as JSON to
// an HTTP server.
//
// Each message is sent as the record of IoT Hub's storage endpoint:
//
//	{"EnqueuedTimeUtc":"2019-05-10T06:06:32.7220000Z","Properties":{"a":"1"},
//	 "SystemProperties":{"connectionDeviceId":"dev-1","contentType":"application/json",
//	 "contentEncoding":"utf-8","enqueuedTime":"2019-05-10T06:06:32.7220000Z"},"Body":{"t":21.5}}
//
// Body holds the message's JSON when its content type is application/json
// and its encoding UTF-8, else the body in base64. With [Options.Batch] a
// request carries a JSON array of such records.
//
// A 2xx answer accepts the request's messages. 429, 5xx and transport
// errors are retryable; 413 refuses the message as too large and any
// other status refuses it as invalid: the delivery engine then drops it.
package webhook
