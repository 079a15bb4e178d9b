// Package codec encodes the keys and records of hubkit's Pebble store.
//
// Keys start with a one-byte [Space] that separates the concerns of the
// store, followed by fixed-width big-endian integers and length-prefixed
// names, so that byte order is the order the store needs: the records of one
// stream partition sort by sequence number, the messages of one device queue
// by sequence number, the outcome journal by sequence number.
//
// Names are written as a two-byte big-endian length followed by the bytes.
// The length prefix keeps one name from being a prefix of another in the key
// space (stream "a" partition 1 never collides with stream "a\x00..."), costs
// no lookup table that would have to be persisted in the same batch as the
// first write, and Pebble's prefix compression keeps repeated names cheap on
// disk.
//
// Records (messages) are encoded by [AppendMessage] and decoded by
// [DecodeMessage], which checks a CRC-32C so that a damaged value is reported
// as [ErrCorrupt] rather than returned as garbage.
//
// Decoders never panic: any input that is not a valid encoding gives an
// error wrapping ErrCorrupt.
package codec
