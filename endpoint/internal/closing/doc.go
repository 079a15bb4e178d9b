// Package closing gives endpoints the Close behaviour hubkit promises: an
// idempotent Close that cancels the calls in progress, after which every
// call returns hubkit.ErrClosed.
package closing
