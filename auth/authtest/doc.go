// Package authtest is the conformance suite for [auth.Authenticator]
// implementations. An implementation, ours or a user's, calls [Run] from
// its tests with a [Harness] that builds it and mints credentials:
//
//	func TestConformance(t *testing.T) {
//		authtest.Run(t, authtest.Harness{New: newEnv})
//	}
//
// The suite checks what the interface's doc comment promises: valid
// credentials give the claimed identity; wrong keys, expired or
// not-yet-valid credentials, another device's credentials, unknown and
// disabled devices and malformed input are denied with an error wrapping
// [auth.ErrDenied], never a panic; a cancelled context is honoured; and
// concurrent use is safe (run it with -race).
package authtest
