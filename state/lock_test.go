package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Environment of the helper process that holds the lock.
const (
	helperDirEnv  = "SKYWARD_STATE_TEST_LOCK_DIR"
	helperHoldEnv = "SKYWARD_STATE_TEST_LOCK_HOLD"
)

var helperCreated = time.Date(2026, 11, 28, 17, 2, 3, 0, time.UTC)

// TestHelperProcess is not a test: re-executed by startHolder, it takes the
// lock in $SKYWARD_STATE_TEST_LOCK_DIR, prints "locked" and holds it until
// its stdin closes, it is killed, or $SKYWARD_STATE_TEST_LOCK_HOLD passes,
// then exits without unlocking (the kernel releases the lock).
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return
	}
	f := &File{Dir: dir}
	_, err := f.Lock(context.Background(), LockInfo{
		PID: os.Getpid(), Command: "skyward apply", Who: "tester@testhost", Created: helperCreated,
	}, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("locked")
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	var timeout <-chan time.Time
	if d, err := time.ParseDuration(os.Getenv(helperHoldEnv)); err == nil {
		timeout = time.After(d)
	}
	select {
	case <-done:
	case <-timeout:
	}
	os.Exit(0)
}

// startHolder starts a process that holds the lock in dir for hold (zero:
// until killed) and returns once it holds it.
func startHolder(t *testing.T, dir string, hold time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	if hold > 0 {
		cmd.Env = append(cmd.Env, helperHoldEnv+"="+hold.String())
	}
	cmd.Stderr = os.Stderr
	// The helper exits when this pipe closes, should the test die first.
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s != "locked\n" {
			t.Fatalf("helper process printed %q, want \"locked\"", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("helper process did not take the lock")
	}
	return cmd
}

func TestLockHeldByOtherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".skyward")
	f := &File{Dir: dir}
	holder := startHolder(t, dir, 0)

	start := time.Now()
	l, err := f.Lock(context.Background(), NewLockInfo("skyward plan"), 0)
	if err == nil {
		l.Unlock()
		t.Fatal("Lock succeeded while another process holds it")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Lock without timeout took %v; want it to fail at once", d)
	}
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LockedError", err, err)
	}
	want := fmt.Sprintf(`state is locked: %s is held by pid %d ("skyward apply", tester@testhost) since 2026-11-28T17:02:03Z`,
		f.LockPath(), holder.Process.Pid)
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}

	// SIGKILL gives the holder no chance to clean up; the kernel still
	// releases the lock.
	if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	holder.Wait()
	info := NewLockInfo("skyward apply")
	l, err = f.Lock(context.Background(), info, 0)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	defer l.Unlock()
	if diff := cmp.Diff(&info, f.holder()); diff != "" {
		t.Errorf("lock info (-want +got):\n%s", diff)
	}
}

func TestLockWaitsForHolder(t *testing.T) {
	dir := t.TempDir()
	f := &File{Dir: dir}
	const hold = 600 * time.Millisecond
	holder := startHolder(t, dir, hold)

	start := time.Now()
	l, err := f.Lock(context.Background(), NewLockInfo("skyward apply"), 20*time.Second)
	if err != nil {
		t.Fatalf("Lock with timeout: %v", err)
	}
	defer l.Unlock()
	if d := time.Since(start); d < hold/2 {
		t.Errorf("Lock returned after %v, before the holder (holding %v) exited", d, hold)
	}
	if err := holder.Wait(); err != nil {
		t.Errorf("holder: %v", err)
	}
}

func TestLockTimeoutExpires(t *testing.T) {
	dir := t.TempDir()
	f := &File{Dir: dir}
	holder := startHolder(t, dir, 0)

	const timeout = 400 * time.Millisecond
	start := time.Now()
	_, err := f.Lock(context.Background(), NewLockInfo("skyward apply"), timeout)
	d := time.Since(start)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Lock error = %v; want a *LockedError", err)
	}
	if d < timeout || d > timeout+5*time.Second {
		t.Errorf("Lock gave up after %v; want about %v", d, timeout)
	}
	if le.Waited < timeout || le.Holder == nil || le.Holder.PID != holder.Process.Pid {
		t.Errorf("LockedError = %+v; want Waited >= %v and the holder's pid %d", le, timeout, holder.Process.Pid)
	}
	if !strings.Contains(err.Error(), "gave up after waiting") {
		t.Errorf("error %q does not say it waited", err)
	}
}

func TestLockContextCancel(t *testing.T) {
	f := &File{Dir: t.TempDir()}
	// flock locks belong to open files, so a second Lock in this process
	// conflicts like another process would.
	held, err := f.Lock(context.Background(), NewLockInfo("skyward apply"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err = f.Lock(ctx, NewLockInfo("skyward destroy"), time.Minute)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Lock returned %v after cancel", d)
	}
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock error = %v; want a *LockedError wrapping context.Canceled", err)
	}
}

func TestLockUnlock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".skyward")
	f := &File{Dir: dir}
	infoPath := filepath.Join(dir, "state.lock.info")
	for i := range 2 {
		info := NewLockInfo(fmt.Sprintf("skyward apply #%d", i))
		l, err := f.Lock(context.Background(), info, 0)
		if err != nil {
			t.Fatalf("lock %d: %v", i, err)
		}
		if diff := cmp.Diff(&info, f.holder()); diff != "" {
			t.Errorf("lock %d: info (-want +got):\n%s", i, diff)
		}
		got := map[string]os.FileMode{".skyward": mode(t, dir), "state.lock.info": mode(t, infoPath)}
		if diff := cmp.Diff(map[string]os.FileMode{".skyward": 0o700, "state.lock.info": 0o600}, got); diff != "" {
			t.Errorf("modes (-want +got):\n%s", diff)
		}
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
		if err := l.Unlock(); err != nil {
			t.Errorf("second Unlock: %v", err)
		}
		if _, err := os.Stat(infoPath); !os.IsNotExist(err) {
			t.Errorf("lock info still there after Unlock: %v", err)
		}
	}
}

func TestLockedErrorMessage(t *testing.T) {
	tests := map[string]struct {
		err  LockedError
		want string
	}{
		"holder": {
			err: LockedError{Path: ".skyward/state.lock", Holder: &LockInfo{
				PID: 1234, Command: "skyward apply", Who: "root@host",
				Created: time.Date(2026, 11, 28, 18, 2, 3, 0, time.FixedZone("CET", 3600)),
			}},
			want: `state is locked: .skyward/state.lock is held by pid 1234 ("skyward apply", root@host) since 2026-11-28T17:02:03Z`,
		},
		"pid only": {
			err:  LockedError{Path: ".skyward/state.lock", Holder: &LockInfo{PID: 99}},
			want: `state is locked: .skyward/state.lock is held by pid 99`,
		},
		"unknown holder": {
			err:  LockedError{Path: ".skyward/state.lock"},
			want: `state is locked: .skyward/state.lock is held by another process`,
		},
		"waited": {
			err:  LockedError{Path: ".skyward/state.lock", Waited: 5*time.Second + 300*time.Microsecond},
			want: `state is locked: .skyward/state.lock is held by another process (gave up after waiting 5s)`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() =\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestLockMissingInfo(t *testing.T) {
	f := &File{Dir: t.TempDir()}
	held, err := f.Lock(context.Background(), NewLockInfo("skyward apply"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	if err := os.WriteFile(filepath.Join(f.Dir, "state.lock.info"), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = f.Lock(context.Background(), NewLockInfo("skyward apply"), 0)
	want := "state is locked: " + f.LockPath() + " is held by another process"
	if err == nil || err.Error() != want {
		t.Errorf("Lock error = %v; want %q", err, want)
	}
}
