// Package httperr writes errors the way IoT Hub answers them over HTTP, for
// the device API (broker/https) and the service API (hub/service).
package httperr
