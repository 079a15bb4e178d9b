package hub

import (
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

// openStore opens the default store: Pebble in Config.Dir, on the hub's
// clock.
func (h *Hub) openStore() (queue.DurableQueue, error) {
	return pebble.Open(h.cfg.Dir, pebble.Options{Now: h.cfg.Clock.Now, Logger: h.cfg.Logger})
}
