// Package devcert makes certificate authorities and certificates for
// development hubs and tests: a CA, server certificates for the host names
// devices dial, client certificates for X.509 devices. Keys are ECDSA P-256.
// Nothing here is meant for production PKI.
package devcert
