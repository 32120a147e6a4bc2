package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// RunLocks keep applies off the nodes of pools that tasks run on: a run
// holds a pool's lock shared for its whole length (several runs at once
// are fine), and an apply or destroy that touches a pool's nodes takes it
// exclusive. They are OS file locks in Dir (.skyward/runs), so a process
// that dies holds none; each run also writes who it is beside the lock,
// for the error an apply gets. They guard runs and applies of one machine.
type RunLocks struct {
	Dir string
}

// RunInfo says what a run holding a pool's lock is doing.
type RunInfo struct {
	Task    string    `json:"task"`
	PID     int       `json:"pid"`
	Who     string    `json:"who"`
	Created time.Time `json:"created"`
}

// RunningError is returned by Exclusive when runs hold the pool.
type RunningError struct {
	Pool   string
	Runs   []RunInfo // what the runs wrote about themselves (may be empty)
	Waited time.Duration
}

func (e *RunningError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tasks are running on pool %q", e.Pool)
	for i, r := range e.Runs {
		sep := ": "
		if i > 0 {
			sep = "; "
		}
		fmt.Fprintf(&b, "%stask %s (pid %d, %s, since %s)", sep, r.Task, r.PID, r.Who, r.Created.Format(time.RFC3339))
	}
	if e.Waited > 0 {
		fmt.Fprintf(&b, "; waited %s", e.Waited.Round(time.Second))
	}
	b.WriteString("; wait for the run to end, or stop it, then apply again (or pass -lock-timeout to wait)")
	return b.String()
}

func (l RunLocks) lockPath(pool string) string { return filepath.Join(l.Dir, pool+".lock") }

// Share takes pool's lock shared for a run of info.Task, waiting up to
// timeout while an apply holds it. The returned func releases it.
func (l RunLocks) Share(ctx context.Context, pool string, info RunInfo, timeout time.Duration) (func(), error) {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, err
	}
	fl := flock.New(l.lockPath(pool))
	if err := retryLock(ctx, timeout, fl.TryRLock); err != nil {
		if errors.Is(err, errLockBusy) {
			return nil, fmt.Errorf("pool %q is being changed by an apply or destroy; run again when it is done (or pass -lock-timeout to wait)", pool)
		}
		return nil, err
	}
	infoPath := filepath.Join(l.Dir, fmt.Sprintf("%s.%d.json", pool, info.PID))
	if b, err := json.Marshal(info); err == nil {
		_ = os.WriteFile(infoPath, b, 0o600)
	}
	return func() {
		os.Remove(infoPath)
		fl.Unlock()
	}, nil
}

// Exclusive takes pool's lock for an apply, waiting up to timeout while
// runs hold it; then it fails with a *RunningError naming them.
func (l RunLocks) Exclusive(ctx context.Context, pool string, timeout time.Duration) (func(), error) {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, err
	}
	fl := flock.New(l.lockPath(pool))
	start := time.Now()
	if err := retryLock(ctx, timeout, fl.TryLock); err != nil {
		if errors.Is(err, errLockBusy) {
			waited := time.Duration(0)
			if timeout > 0 {
				waited = time.Since(start)
			}
			return nil, &RunningError{Pool: pool, Runs: l.runs(pool), Waited: waited}
		}
		return nil, err
	}
	// No run holds the pool: what runs wrote about themselves is stale.
	for _, p := range l.infoFiles(pool) {
		os.Remove(p)
	}
	return func() { fl.Unlock() }, nil
}

var errLockBusy = errors.New("lock busy")

// retryLock calls try until it gets the lock, ctx ends or timeout passes.
func retryLock(ctx context.Context, timeout time.Duration, try func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := try()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if !time.Now().Before(deadline) {
			return errLockBusy
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lockRetry):
		}
	}
}

func (l RunLocks) infoFiles(pool string) []string {
	m, _ := filepath.Glob(filepath.Join(l.Dir, pool+".*.json"))
	return m
}

// runs reads what the live runs of pool wrote, oldest first.
func (l RunLocks) runs(pool string) []RunInfo {
	var out []RunInfo
	for _, p := range l.infoFiles(pool) {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r RunInfo
		if json.Unmarshal(b, &r) != nil || r.PID <= 0 || syscall.Kill(r.PID, 0) == syscall.ESRCH {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}
