package agent

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// powerOff ends the node: a machine (PID 1 is an init) is halted, and a
// cloud VM set to terminate on shutdown is then gone; a container, which
// lasts as long as its PID 1, has PID 1 sent SIGTERM. It is a variable so
// that tests can see it called without ending anything.
var powerOff = func() error {
	comm, _ := os.ReadFile("/proc/1/comm")
	switch strings.TrimSpace(string(comm)) {
	case "systemd", "init":
		path, err := exec.LookPath("shutdown")
		if err != nil {
			return err
		}
		p, err := children.start(path, []string{"shutdown", "-h", "now"}, &syscall.ProcAttr{Env: os.Environ()}, false)
		if err != nil {
			return err
		}
		<-p.done
		if p.err != nil || p.status.ExitStatus() != 0 {
			return fmt.Errorf("shutdown -h now: exit status %d %v", p.status.ExitStatus(), p.err)
		}
		return nil
	}
	return syscall.Kill(1, syscall.SIGTERM)
}

// bootTime is when the node's PID 1 started: the machine's boot, or a
// container's start. Should /proc not tell, it is now.
func bootTime() time.Time {
	stat, err1 := os.ReadFile("/proc/stat")
	pid1, err2 := os.ReadFile("/proc/1/stat")
	if err1 != nil || err2 != nil {
		return time.Now()
	}
	var btime int64
	for _, line := range strings.Split(string(stat), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			btime, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	// Field 22 (starttime, in clock ticks since boot) counts from after
	// the command name, which may hold spaces but ends with ')'.
	_, rest, ok := strings.Cut(string(pid1), ") ")
	fields := strings.Fields(rest)
	if btime == 0 || !ok || len(fields) < 20 {
		return time.Now()
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return time.Now()
	}
	const clockTicks = 100 // USER_HZ on every Linux architecture skyward runs on
	return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / clockTicks)
}
