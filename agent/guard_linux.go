//go:build linux

package agent

import (
	"os"

	"golang.org/x/sys/unix"
)

// readerGone reports whether f is a pipe or socket whose other end is
// closed (POLLERR or POLLHUP on the writing side), as happens to a
// command's standard output when its SSH session ends.
func readerGone(f *os.File) bool {
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: 0}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0
}
