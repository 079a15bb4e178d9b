package pebble_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hubkit/hubkit/queue/pebble"
)

// crashDirEnv names the store directory of a crash-test child process.
const (
	crashDirEnv  = "HUBKIT_PEBBLE_CRASH_DIR"
	crashSeedEnv = "HUBKIT_PEBBLE_CRASH_SEED"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// crashChild runs the workload on the store in dir and prints every event
// as one line, "kind queue partition seq sum", until it is killed.
func crashChild(dir string) int {
	s, err := pebble.Open(dir, pebble.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	var mu sync.Mutex
	note := func(kind byte, q string, p int, seq uint64, sum uint32) {
		line := fmt.Sprintf("%c %s %d %d %d\n", kind, q, p, seq, sum)
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(line) // one write per line: a kill never splits it
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // in case nobody kills us
	defer cancel()
	runWorkload(ctx, s, seed, note)
	return 0
}

// parseEvents adds the complete lines of out to log.
func parseEvents(t *testing.T, out []byte, log *ackLog) int {
	t.Helper()
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[:i+1]
	} else {
		out = nil
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		var kind byte
		var q string
		var p int
		var seq uint64
		var sum uint32
		f := strings.Split(line, " ")
		if len(f) != 5 || len(f[0]) != 1 {
			t.Fatalf("child printed %q", line)
		}
		kind, q = f[0][0], f[1]
		var err error
		if p, err = strconv.Atoi(f[2]); err == nil {
			if seq, err = strconv.ParseUint(f[3], 10, 64); err == nil {
				var s64 uint64
				s64, err = strconv.ParseUint(f[4], 10, 32)
				sum = uint32(s64)
			}
		}
		if err != nil {
			t.Fatalf("child printed %q: %v", line, err)
		}
		log.apply(kind, q, p, seq, sum)
		n++
	}
	return n
}

// TestCrashKill kills a child process that writes under concurrent load
// with SIGKILL at random moments, reopens the store each time and checks
// that everything the child was told is durable is there and intact.
func TestCrashKill(t *testing.T) {
	const kills = 20
	dir := t.TempDir()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	log := newAckLog()
	var cursor uint64
	for i := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(seed+uint64(i), 10))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once the child has acknowledged something, after a random delay.
		var out bytes.Buffer
		first := make([]byte, 1)
		if _, err := io.ReadFull(stdout, first); err != nil {
			_ = cmd.Wait()
			t.Fatalf("run %d: child printed nothing: %v; stderr: %s", i, err, stderr.String())
		}
		out.Write(first)
		kill := time.AfterFunc(time.Duration(10+r.IntN(300))*time.Millisecond, func() { _ = cmd.Process.Kill() })
		_, _ = io.Copy(&out, stdout)
		kill.Stop()
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("run %d: child ended with %v, want killed; stderr: %s", i, err, stderr.String())
		}
		n := parseEvents(t, out.Bytes(), log)

		s, err := pebble.Open(dir, pebble.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("run %d: reopen after kill: %v", i, err)
		}
		var problems []string
		cursor, problems = verify(s, log, cursor)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("run %d: %s", i, p)
		}
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("run %d: %d events, %d acknowledged records in total", i, n, len(log.appends))
	}
	if len(log.appends) == 0 || len(log.completed) == 0 || len(log.rejected) == 0 || len(log.abandoned) == 0 || log.cursor == 0 {
		t.Fatalf("the workload acknowledged too little to prove anything: %d appends, %d completes, %d rejects, %d abandons, cursor %d",
			len(log.appends), len(log.completed), len(log.rejected), len(log.abandoned), log.cursor)
	}
}

// powerLoss runs the workload on a crashable in-memory file system and
// takes a crash clone (only synced data survives) at a random moment, once
// per round, each on a fresh store; it returns the problems found in each
// clone.
func powerLoss(t *testing.T, opts pebble.Options, rounds int) [][]string {
	t.Helper()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	var found [][]string
	for i := range rounds {
		fs := vfs.NewCrashableMem()
		opts.FS = fs
		opts.Logger = slog.New(slog.DiscardHandler)
		s, err := pebble.Open("db", opts)
		if err != nil {
			t.Fatal(err)
		}
		log := newAckLog()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { runWorkload(ctx, s, seed+uint64(i), log.apply) })
		pause := time.NewTimer(time.Duration(5+r.IntN(50)) * time.Millisecond)
		<-pause.C
		acked := log.clone() // before the clone: all of it was durable when cloned
		crashed := fs.CrashClone(vfs.CrashCloneCfg{})
		later := log.clone() // after: any of these may have happened
		acked.completing, acked.rejecting = later.completing, later.rejecting
		cancel()
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		c, err := pebble.Open("db", pebble.Options{FS: crashed, Logger: opts.Logger})
		if err != nil {
			found = append(found, []string{fmt.Sprintf("open crash clone: %v", err)})
			continue
		}
		_, problems := verify(c, acked, 0)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if len(acked.appends) == 0 {
			problems = append(problems, "nothing acknowledged yet")
		}
		found = append(found, problems)
	}
	return found
}

// TestPowerLoss checks that every acknowledged change survives a power
// loss at a random moment under concurrent load.
func TestPowerLoss(t *testing.T) {
	const rounds = 20
	idle := 0
	for i, problems := range powerLoss(t, pebble.Options{}, rounds) {
		for _, p := range problems {
			if p == "nothing acknowledged yet" {
				idle++
			} else {
				t.Errorf("clone %d: %s", i, p)
			}
		}
	}
	if idle > rounds/2 {
		t.Fatalf("in %d of %d rounds nothing was acknowledged before the crash", idle, rounds)
	}
}

// TestPowerLossCatchesAckBeforeSync runs the same check on a store that
// acknowledges before it syncs, and requires the check to catch it: proof
// that TestPowerLoss can fail.
func TestPowerLossCatchesAckBeforeSync(t *testing.T) {
	caught := 0
	for _, problems := range powerLoss(t, pebble.AckBeforeSync(pebble.Options{}), 3) {
		for _, p := range problems {
			if strings.Contains(p, "missing") || strings.Contains(p, "vanished") || strings.Contains(p, "below the acknowledged") || strings.Contains(p, "no outcome") {
				caught++
				t.Logf("caught as expected: %s", p)
				break
			}
		}
	}
	if caught == 0 {
		t.Fatal("the power-loss check found no lost data on a store that acknowledges before syncing")
	}
}
