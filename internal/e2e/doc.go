// Package e2e holds hubkit's end-to-end tests: real devices (paho and the
// Azure IoT device SDK for Node.js) talk MQTT over TLS to a whole hub on
// Pebble, a service reads telemetry and feedback through the hub's Go API,
// and the hub is restarted between steps and killed with SIGKILL under load.
//
// The package has no API: everything lives in its tests. Run them with
//
//	go test -race ./internal/e2e
package e2e
