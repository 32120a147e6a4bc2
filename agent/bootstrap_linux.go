//go:build linux

package agent

import "syscall"

// phaseSysProcAttr puts a bootstrap command in a process group of its own
// and kills it should the bootstrap die first (for instance when the SSH
// session that runs it is killed).
func phaseSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
