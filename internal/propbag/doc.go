// Package propbag is the codec of IoT Hub's MQTT property bag, the
// key=value&key=value suffix of telemetry and cloud-to-device topics
// (spec mqtt.md §4), mapped to and from [hubkit.Message].
//
// Decoding accepts what every SDK sends: system keys as $.mid or %24.mid,
// keys and values percent-decoded as JavaScript's decodeURIComponent does
// ('+' stays '+'), a bare key for a null value and key= for an empty one.
// Encoding writes what the Node.js SDK parses: %24 for the $ of system
// keys, keys and values percent-encoded as encodeURIComponent does (so a
// space is %20 and '/' is %2F), a bare key for a null value.
package propbag
