// Package broker defines the device side of a hub: a [Broker] speaks a
// device protocol (MQTT in broker/mqtt, HTTPS in broker/https), turns
// packets into [hubkit.Message]s and back in IoT Hub's dialect, and talks to
// the hub through the small [Hub] interface.
package broker
