package mqtt

// EngineKnows reports whether the MQTT engine still holds a client with the
// client id, connected or remembered after it left.
func (b *Broker) EngineKnows(clientID string) bool {
	_, ok := b.server.Clients.Get(clientID)
	return ok
}
