package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// lockRetry is how often Lock tries again while it waits.
const lockRetry = 150 * time.Millisecond

// LockInfo says who holds the state lock. It is written to
// Dir/state.lock.info while the lock is held, for the error a second writer
// gets.
type LockInfo struct {
	// PID is the holder's process id.
	PID int `json:"pid"`
	// Command is the command line that holds the lock ("skyward apply").
	Command string `json:"command"`
	// Who is user@host.
	Who string `json:"who"`
	// Created is when the lock was taken.
	Created time.Time `json:"created"`

	// The fields below are those of Terraform's lock info; the S3 backend
	// fills them in (ID when it takes the lock) and prints them as
	// Terraform's "Lock Info" block when a second writer is refused.

	// ID identifies one taking of the lock, for force-unlock.
	ID string `json:"id,omitempty"`
	// Operation is the command's operation: "apply", "plan", "destroy".
	Operation string `json:"operation,omitempty"`
	// Path is where the locked state is ("bucket/key").
	Path string `json:"path,omitempty"`
	// Version is the holder's skyward version.
	Version string `json:"version,omitempty"`
}

// NewLockInfo returns the LockInfo of this process for command: its pid,
// user@host and the current time.
func NewLockInfo(command string) LockInfo {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return LockInfo{
		PID:     os.Getpid(),
		Command: command,
		Who:     name + "@" + host,
		Created: time.Now().UTC().Truncate(time.Second),
	}
}

// LockedError is returned by Lock when another process holds the lock.
type LockedError struct {
	// Path is the lock file.
	Path string
	// Holder is what the holder wrote about itself, or nil when that could
	// not be read (it is just taking the lock, or wrote nothing).
	Holder *LockInfo
	// Waited is how long Lock waited before giving up; zero when it failed
	// at once.
	Waited time.Duration
}

// Error reads like: state is locked: .skyward/state.lock is held by pid 1234
// ("skyward apply", root@host) since 2026-11-28T17:02:03Z.
//
// A lock with an ID (the S3 backend's) reads as Terraform's message, with
// the "Lock Info" block (ID, Path, Operation, Who, Version, Created, Info)
// and how to remove a lock left by a dead process.
func (e *LockedError) Error() string {
	if e.Holder != nil && e.Holder.ID != "" {
		return e.lockInfoBlock()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state is locked: %s is held by ", e.Path)
	if h := e.Holder; h == nil {
		b.WriteString("another process")
	} else {
		fmt.Fprintf(&b, "pid %d", h.PID)
		var about []string
		if h.Command != "" {
			about = append(about, fmt.Sprintf("%q", h.Command))
		}
		if h.Who != "" {
			about = append(about, h.Who)
		}
		if len(about) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(about, ", "))
		}
		if !h.Created.IsZero() {
			fmt.Fprintf(&b, " since %s", h.Created.UTC().Format(time.RFC3339))
		}
	}
	if e.Waited > 0 {
		fmt.Fprintf(&b, " (gave up after waiting %s)", e.Waited.Round(time.Millisecond))
	}
	return b.String()
}

// Lock is a held state lock. It is not safe for concurrent use.
type Lock struct {
	fl       *flock.Flock
	infoPath string
}

// Lock takes the state lock Dir/state.lock, creating Dir (0700) when
// missing. It tries at once; if the lock is held and timeout > 0 it tries
// again every 150ms until it gets the lock, timeout passes or ctx is done.
//
// The lock is an OS-level advisory lock (flock), released by the kernel when
// the holder exits in any way, so a dead process never leaves it held. On
// success info is written to Dir/state.lock.info (0600).
//
// When the lock stays held the error is a *LockedError naming the holder;
// when ctx ends the wait, the error also wraps ctx.Err().
func (f *File) Lock(ctx context.Context, info LockInfo, timeout time.Duration) (*Lock, error) {
	if f.Dir == "" {
		return nil, errors.New("state: File.Dir is empty")
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	fl := flock.New(f.LockPath(), flock.SetPermissions(0o600))
	start := time.Now()
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	var ctxErr error
	if !ok && timeout > 0 {
		deadline := time.NewTimer(timeout)
		defer deadline.Stop()
		tick := time.NewTicker(lockRetry)
		defer tick.Stop()
	wait:
		for {
			select {
			case <-ctx.Done():
				ctxErr = ctx.Err()
				break wait
			case <-deadline.C:
				// One last try, so a lock freed at the deadline is not missed.
			case <-tick.C:
			}
			if ok, err = fl.TryLock(); err != nil {
				return nil, fmt.Errorf("lock state: %w", err)
			}
			if ok || time.Since(start) >= timeout {
				break
			}
		}
	}
	if !ok {
		fl.Close()
		lerr := &LockedError{Path: f.LockPath(), Holder: f.holder()}
		if timeout > 0 {
			lerr.Waited = time.Since(start)
		}
		if ctxErr != nil {
			return nil, fmt.Errorf("%w (%w)", lerr, ctxErr)
		}
		return nil, lerr
	}

	l := &Lock{fl: fl, infoPath: filepath.Join(f.Dir, lockInfoName)}
	data, err := json.MarshalIndent(info, "", "  ")
	if err == nil {
		err = writeAtomic(l.infoPath, append(data, '\n'))
	}
	if err != nil {
		l.Unlock()
		return nil, fmt.Errorf("lock state: write %s: %w", l.infoPath, err)
	}
	return l, nil
}

// holder reads the lock info, or returns nil.
func (f *File) holder() *LockInfo {
	data, err := os.ReadFile(filepath.Join(f.Dir, lockInfoName))
	if err != nil {
		return nil
	}
	var info LockInfo
	if err := json.Unmarshal(data, &info); err != nil || info.PID == 0 {
		return nil
	}
	return &info
}

// Unlock removes the lock info file and releases the lock. Calling it again
// does nothing. The lock file itself stays: removing it while another process
// waits on it would let two processes hold "the" lock.
func (l *Lock) Unlock() error {
	if l == nil || l.fl == nil {
		return nil
	}
	// The info goes first, while we still hold the lock, so it can never
	// remove the next holder's info.
	err := os.Remove(l.infoPath)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if uerr := l.fl.Unlock(); uerr != nil && err == nil {
		err = uerr
	}
	l.fl.Close()
	l.fl = nil
	if err != nil {
		return fmt.Errorf("unlock state: %w", err)
	}
	return nil
}

// lockInfoBlock is Terraform's "Error acquiring the state lock" message.
func (e *LockedError) lockInfoBlock() string {
	h := e.Holder
	var b strings.Builder
	b.WriteString("Error acquiring the state lock: ")
	if e.Waited > 0 {
		fmt.Fprintf(&b, "%s is held by another process (gave up after waiting %s)\n", e.Path, e.Waited.Round(time.Millisecond))
	} else {
		fmt.Fprintf(&b, "%s is held by another process\n", e.Path)
	}
	b.WriteString("Lock Info:\n")
	row := func(k, v string) { fmt.Fprintf(&b, "  %-10s %s\n", k+":", v) }
	row("ID", h.ID)
	row("Path", h.Path)
	row("Operation", h.Operation)
	row("Who", h.Who)
	row("Version", h.Version)
	if h.Created.IsZero() {
		row("Created", "")
	} else {
		row("Created", h.Created.UTC().Format("2006-01-02 15:04:05.999999999 -0700 MST"))
	}
	info := h.Command
	if h.PID != 0 {
		info = fmt.Sprintf("%s (pid %d)", h.Command, h.PID)
	}
	row("Info", info)
	b.WriteString("\nSkyward acquires a state lock to protect the state from being written by\n")
	b.WriteString("multiple users at the same time. Wait for the holder to finish, or run with\n")
	b.WriteString("-lock-timeout=DURATION to wait for it. If the holder is dead, remove its lock\n")
	fmt.Fprintf(&b, "with: skyward force-unlock %s", h.ID)
	return b.String()
}
