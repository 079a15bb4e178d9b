package pebble

// AckBeforeSync returns opts with the deliberately broken mode in which
// writes are acknowledged before they are synced, for the power-loss test.
func AckBeforeSync(opts Options) Options {
	opts.ackBeforeSync = true
	return opts
}
