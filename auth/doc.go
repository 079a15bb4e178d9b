// Package auth decides who a device or service is and what it may do, with
// IoT Hub's rules: SAS tokens, X.509 certificates and the device registry.
package auth
