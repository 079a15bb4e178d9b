// Package record encodes messages as the JSON records of IoT Hub's storage
// endpoint, which the webhook and file endpoints write:
//
//	{"EnqueuedTimeUtc":"2019-05-10T06:06:32.7220000Z","Properties":{…},
//	 "SystemProperties":{"connectionDeviceId":"…","enqueuedTime":"…"},"Body":…}
//
// Body is the message's JSON itself when its content type is
// application/json and its encoding UTF-8 (both compared
// case-insensitively) and the body is valid JSON; otherwise it is the body
// in base64.
package record
