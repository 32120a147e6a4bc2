//go:build linux

package agent

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// siginfoPidIndex is the index, in int32 words, of si_pid in a SIGCHLD
// siginfo_t: after si_signo, si_errno and si_code, the union is aligned to
// the pointer size.
const siginfoPidIndex = (12 + (unsafe.Sizeof(uintptr(0))-4)%8) / 4

// reapOne reaps one exited child: pid, or any child when pid is -1. It
// returns pid 0 when none has exited. beforeReap runs while the child is
// still a zombie, so its pid (and process group id) cannot be reused yet.
func reapOne(pid int, beforeReap func(pid int)) (int, syscall.WaitStatus, error) {
	idType, id := unix.P_PID, pid
	if pid < 0 {
		idType, id = unix.P_ALL, 0
	}
	var info unix.Siginfo
	for {
		err := unix.Waitid(idType, id, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		break
	}
	words := (*[32]int32)(unsafe.Pointer(&info))
	got := int(words[siginfoPidIndex])
	if got <= 0 {
		return 0, 0, nil
	}
	beforeReap(got)
	var ws syscall.WaitStatus
	for {
		r, err := syscall.Wait4(got, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || r != got {
			return 0, 0, err
		}
		return got, ws, nil
	}
}

// setSubreaper makes orphaned descendants re-parent to this process.
func setSubreaper(on bool) error {
	var v uintptr
	if on {
		v = 1
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, v, 0, 0, 0)
}
