package agent

import (
	"fmt"
	"os"
	"syscall"
)

// fileIdentity is what tells one version of a file from another without
// reading it: device, inode, size, and modification and change times in
// nanoseconds.
func fileIdentity(fi os.FileInfo) (string, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%d:%d:%d:%d.%d:%d.%d", st.Dev, st.Ino, st.Size,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec), true
}
