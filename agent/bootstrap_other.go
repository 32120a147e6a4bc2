//go:build !linux

package agent

import "syscall"

// phaseSysProcAttr puts a bootstrap command in a process group of its own.
func phaseSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
