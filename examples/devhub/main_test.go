package main

import (
	"net/http"
	"testing"
)

func TestIsDeviceRoute(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		device       bool
	}{
		{http.MethodPost, "/devices/d1/messages/events", true},
		{http.MethodPost, "/devices/d1/modules/m1/messages/events", true},
		{http.MethodPost, "/DEVICES/d1/Messages/Events/", true},
		{http.MethodGet, "/devices/d1/messages/deviceBound", true},
		{http.MethodGet, "/devices/d1/messages/devicebound", true},
		{http.MethodDelete, "/devices/d1/messages/deviceBound/lock-1", true},
		{http.MethodPost, "/devices/d1/messages/deviceBound/lock-1/abandon", true},
		{http.MethodPost, "/devices/a%2Fb/messages/events", true},

		// The service API.
		{http.MethodPost, "/devices/d1/messages/devicebound", false},
		{http.MethodGet, "/devices/d1/messages/events", false},
		{http.MethodPut, "/devices/d1", false},
		{http.MethodGet, "/devices/d1", false},
		{http.MethodGet, "/devices", false},
		{http.MethodDelete, "/devices/d1/commands", false},
		{http.MethodDelete, "/devices/d1/messages/deviceBound", false},
		{http.MethodPost, "/devices/d1/messages/deviceBound/lock-1/complete", false},
		{http.MethodGet, "/messages/serviceBound/feedback", false},
		{http.MethodGet, "/messages/events/consumerGroups/$Default/partitions/0", false},
		{http.MethodGet, "/health", false},
		{http.MethodGet, "/", false},
		{http.MethodGet, "", false},
	} {
		if got := isDeviceRoute(tc.method, tc.path); got != tc.device {
			t.Errorf("isDeviceRoute(%s %q) = %v, want %v", tc.method, tc.path, got, tc.device)
		}
	}
}
