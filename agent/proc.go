package agent

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// A proc is a child process started through the reaper.
type proc struct {
	pid int
	// killGroup: when the process exits, SIGKILL the rest of its process
	// group (whose id is pid) before the exit is reported.
	killGroup bool
	done      chan struct{} // closed once status (or err) is set
	status    syscall.WaitStatus
	err       error // the status could not be collected
}

// reaper owns every wait for the children of this package, so that exit
// statuses can never be stolen by another waiter.
//
// Processes are started with mu held across fork and registration, and the
// reaper reaps only with mu held: a child that exits at once is therefore
// always registered by the time its status is collected. In reap-all mode
// (PID 1, or forced for tests) it also collects orphans re-parented to this
// process and discards their statuses; otherwise it waits only for the pids
// it started, so os/exec elsewhere in the process keeps working.
type reaper struct {
	mu      sync.Mutex
	procs   map[int]*proc
	reapAll int    // reap-all requests outstanding
	orphans uint64 // statuses of unregistered children discarded
	started bool
	sigc    chan os.Signal
}

// children is the process-wide reaper: there can be only one waiter for
// "any child".
var children = &reaper{procs: make(map[int]*proc)}

// sweepInterval bounds how long an exit can go unnoticed should a SIGCHLD be
// lost (for instance if someone resets its handler).
const sweepInterval = time.Second

// initLocked starts the reaper goroutine. It must run, with mu held, before
// the first fork so that no SIGCHLD is missed.
func (r *reaper) initLocked() {
	if r.started {
		return
	}
	r.started = true
	// One buffered slot suffices: a pending wake-up always leads to a full
	// sweep, which collects every exit that happened before it.
	r.sigc = make(chan os.Signal, 1)
	signal.Notify(r.sigc, syscall.SIGCHLD)
	go func() {
		t := time.NewTicker(sweepInterval)
		defer t.Stop()
		for {
			select {
			case <-r.sigc:
			case <-t.C:
			}
			r.sweep()
		}
	}()
}

// wake asks for a sweep without waiting for a SIGCHLD.
func (r *reaper) wake() {
	select {
	case r.sigc <- syscall.SIGCHLD:
	default:
	}
}

// start forks and execs path with argv and attr and registers the child.
// With killGroup the child must lead its own process group (Setpgid or
// Setsid in attr.Sys).
func (r *reaper) start(path string, argv []string, attr *syscall.ProcAttr, killGroup bool) (*proc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return nil, err
	}
	p := &proc{pid: pid, killGroup: killGroup, done: make(chan struct{})}
	r.procs[pid] = p
	return p, nil
}

// signalGroup sends sig to p's process group. It does nothing once p has
// been reaped: its pid, and so the group id, may then belong to another
// process. Holding mu keeps the reaper from reaping p meanwhile.
func (r *reaper) signalGroup(p *proc, sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// enableReapAll switches to reaping every child, orphans included, until
// the returned func is called (once per enable). When this process is not
// PID 1 it also becomes a child subreaper, so orphans of its descendants are
// re-parented to it rather than to init.
func (r *reaper) enableReapAll() (release func(), err error) {
	r.mu.Lock()
	r.initLocked()
	r.reapAll++
	first := r.reapAll == 1
	r.mu.Unlock()
	if first && os.Getpid() != 1 {
		if err := setSubreaper(true); err != nil {
			r.mu.Lock()
			r.reapAll--
			r.mu.Unlock()
			return nil, fmt.Errorf("become child subreaper: %w", err)
		}
	}
	r.wake() // collect zombies that were already waiting
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.reapAll--
			last := r.reapAll == 0
			r.mu.Unlock()
			if last && os.Getpid() != 1 {
				_ = setSubreaper(false)
			}
		})
	}, nil
}

// sweep collects every child that has exited.
func (r *reaper) sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reapAll > 0 {
		for {
			pid, ws, err := reapOne(-1, r.beforeReapLocked)
			if err != nil || pid == 0 {
				break // ECHILD: no children at all
			}
			if p := r.procs[pid]; p != nil {
				r.finishLocked(p, ws, nil)
			} else {
				r.orphans++
			}
		}
		// Nothing else waits in this mode: every exit was collected.
		return
	}
	for pid, p := range r.procs {
		got, ws, err := reapOne(pid, r.beforeReapLocked)
		switch {
		case err != nil:
			// Only ECHILD is expected: someone else waited for our child.
			r.finishLocked(p, 0, fmt.Errorf("collect exit status of pid %d: %w", pid, err))
		case got == pid:
			r.finishLocked(p, ws, nil)
		}
	}
}

// beforeReapLocked runs for an exited child that is still a zombie: its
// group id cannot have been reused yet, so killing the group is safe.
func (r *reaper) beforeReapLocked(pid int) {
	if p := r.procs[pid]; p != nil && p.killGroup {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

func (r *reaper) finishLocked(p *proc, ws syscall.WaitStatus, err error) {
	delete(r.procs, p.pid)
	p.status, p.err = ws, err
	close(p.done)
}

// orphanCount reports how many unregistered children have been reaped.
func (r *reaper) orphanCount() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}
