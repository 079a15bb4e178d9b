// Package bench holds the whole-hub benchmarks of hubkit: device-to-cloud
// throughput and latency from MQTT devices to a consumer group, against
// plain mochi-mqtt in the same run, and cloud-to-device sends with
// feedback to a thousand connected devices. README.md gives the commands.
//
// The package has no API: everything lives in its benchmarks.
package bench
