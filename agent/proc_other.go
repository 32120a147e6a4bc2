//go:build !linux

package agent

import (
	"errors"
	"syscall"
)

// reapOne reaps one exited child: pid, or any child when pid is -1. It
// returns pid 0 when none has exited. Without waitid(WNOWAIT), beforeReap
// can only run after the child was reaped.
func reapOne(pid int, beforeReap func(pid int)) (int, syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if pid < 0 && errors.Is(err, syscall.ECHILD) {
				return 0, 0, nil
			}
			return 0, 0, err
		}
		if got <= 0 {
			return 0, 0, nil
		}
		beforeReap(got)
		return got, ws, nil
	}
}

func setSubreaper(bool) error { return nil }
