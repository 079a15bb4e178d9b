package auth_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hubkit/hubkit/auth"
)

// go test -run '^$' -bench . -benchmem ./auth

func BenchmarkParseSAS(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := auth.ParseSAS(vectors[0].token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateSAS measures a whole SAS check with a warm cache:
// parse, expiry, scope, registry lookup, HMAC-SHA256 and compare.
func BenchmarkAuthenticateSAS(b *testing.B) {
	e := newEnv(b, auth.Config{})
	noErr(b, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: deviceKey}}})))
	tok, _ := auth.NewSAS(testHost+"/devices/dev-1", deviceKey, "", testNow.Add(time.Hour))
	c := auth.Credentials{Protocol: auth.MQTT, DeviceID: "dev-1", Password: tok}
	if _, err := e.a.Authenticate(ctx, c); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.a.Authenticate(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.a.Authenticate(ctx, c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRegistryGet measures warm-cache lookups over 10,000 devices.
func BenchmarkRegistryGet(b *testing.B) {
	r := newRegistry(b, newKV(b), nil)
	const n = 10000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("dev-%05d", i)
		if _, err := r.Create(ctx, auth.Device{DeviceID: ids[i]}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := r.Get(ctx, ids[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := r.Get(ctx, ids[i%n]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
