package queuetest

import "testing"

func testKV(t *testing.T, h Harness) {}

func testLifecycle(t *testing.T, h Harness) {}
