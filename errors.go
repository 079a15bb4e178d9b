package hubkit

import (
	"errors"
	"strconv"
)

// ErrClosed is returned by every call on a part (hub, store, broker,
// endpoint) after its Close or Shutdown has begun.
var ErrClosed = errors.New("hubkit: closed")

// An Error is an IoT Hub error: the six-digit code IoT Hub reports and its
// name. The first three digits are the HTTP status. The errors below are
// shared by every part; wrap them with %w and the operation, and test for
// them with errors.Is. errors.As(err, &e) recovers the code for protocol
// answers (HTTP status, iothub-errorcode header).
type Error struct {
	// Code is the six-digit IoT Hub error code, e.g. 413001.
	Code int
	// Name is the IoT Hub error name, e.g. MessageTooLarge.
	Name string
}

// Error returns "hubkit: " followed by the name and, in parentheses, the code.
func (e *Error) Error() string { return "hubkit: " + e.Name + " (" + strconv.Itoa(e.Code) + ")" }

// HTTPStatus returns the HTTP status of the error: its code's first three digits.
func (e *Error) HTTPStatus() int { return e.Code / 1000 }

// Errors shared by all parts, named and numbered as IoT Hub names and numbers them.
var (
	ErrArgumentInvalid                 = &Error{400004, "ArgumentInvalid"}
	ErrUnauthorized                    = &Error{401003, "IotHubUnauthorized"}
	ErrDeviceMaximumQueueDepthExceeded = &Error{403004, "DeviceMaximumQueueDepthExceeded"}
	ErrInvalidMessageExpiryTime        = &Error{403009, "InvalidMessageExpiryTime"}
	ErrDeviceDisabled                  = &Error{403012, "DeviceDisabled"}
	ErrDeviceNotFound                  = &Error{404001, "DeviceNotFound"}
	ErrDeviceAlreadyExists             = &Error{409001, "DeviceAlreadyExists"}
	ErrPreconditionFailed              = &Error{412001, "PreconditionFailed"}
	ErrDeviceMessageLockLost           = &Error{412002, "DeviceMessageLockLost"}
	ErrMessageTooLarge                 = &Error{413001, "MessageTooLarge"}
	ErrThrottling                      = &Error{429001, "ThrottlingException"}
	ErrServerError                     = &Error{500001, "ServerError"}
)

// ErrorCode returns the IoT Hub error err wraps, or ErrServerError when it wraps none.
func ErrorCode(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrServerError
}
