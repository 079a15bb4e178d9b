package hub

import (
	"errors"

	"github.com/hubkit/hubkit/queue"
)

// openStore opens the default store in dir.
func openStore(dir string) (queue.DurableQueue, error) {
	return nil, errors.New("hub: the Pebble store is not available yet: set Config.Queue")
}
