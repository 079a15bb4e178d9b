package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint/file"
)

func Example() {
	dir, _ := os.MkdirTemp("", "hubkit-files-")
	defer os.RemoveAll(dir)
	ep, err := file.New(file.Options{
		Dir: dir, HubName: "ContosoTestHub",
		Now: func() time.Time { return time.Date(2018, 10, 30, 10, 56, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ep.Close()
	msg := &hubkit.Message{Body: []byte("hello"), System: hubkit.SystemProperties{ConnectionDeviceID: "dev-1"}}
	for range 2 {
		if _, err := ep.Send(context.Background(), []*hubkit.Message{msg}); err != nil {
			fmt.Println(err)
		}
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			b, _ := os.ReadFile(path)
			fmt.Printf("%s: %s", filepath.ToSlash(rel), b)
		}
		return nil
	})
	// Output:
	// ContosoTestHub/2/2018/10/30/10/56: {"EnqueuedTimeUtc":"","Properties":{},"SystemProperties":{"connectionDeviceId":"dev-1"},"Body":"aGVsbG8="}
	// ContosoTestHub/2/2018/10/30/10/56-1: {"EnqueuedTimeUtc":"","Properties":{},"SystemProperties":{"connectionDeviceId":"dev-1"},"Body":"aGVsbG8="}
}
