package hubkit_test

import (
	"errors"
	"fmt"

	"github.com/hubkit/hubkit"
)

// A cloud-to-device message, its properties and the checks a hub makes
// before it accepts the message.
func Example() {
	m := &hubkit.Message{
		Body:   []byte(`{"setpoint": 21.5}`),
		System: hubkit.SystemProperties{MessageID: "msg-1", ContentType: "application/json", Ack: hubkit.AckFull},
	}
	m.Properties.Set("command", "setpoint")
	m.Properties.Set("Command", "setTemperature") // names are case-insensitive: this replaces it
	v, ok := m.Properties.Get("COMMAND")
	fmt.Println(len(m.Properties), v, ok)
	fmt.Println(m.Size(), hubkit.ValidateC2D(m))

	bad := m.Clone()
	bad.Properties.Set("note", "hello world") // a space is not an HTTP token character
	err := hubkit.ValidateC2D(bad)
	fmt.Println(errors.Is(err, hubkit.ErrArgumentInvalid), hubkit.ErrorCode(err).HTTPStatus())

	big := &hubkit.Message{Body: make([]byte, hubkit.MaxD2CSize+1)}
	err = hubkit.ValidateD2C(big)
	fmt.Println(errors.Is(err, hubkit.ErrMessageTooLarge), hubkit.ErrorCode(err).Code)
	// Output:
	// 1 setTemperature true
	// 64 <nil>
	// true 400
	// true 413001
}
