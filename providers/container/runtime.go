package container

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"
)

// Runtimes: the values of the provider block's binary.
const (
	RuntimeDocker  = "docker"
	RuntimePodman  = "podman"
	RuntimeNerdctl = "nerdctl"
)

// podmanHost is the socket of Podman's Docker-compatible service for a
// process of uid: CONTAINER_HOST when set (as the podman CLI reads it),
// else the rootful system socket for root, else the rootless one in the
// user's runtime directory.
func podmanHost(uid int) string {
	if h := os.Getenv("CONTAINER_HOST"); h != "" {
		return h
	}
	if uid == 0 {
		return "unix:///run/podman/podman.sock"
	}
	d := os.Getenv("XDG_RUNTIME_DIR")
	if d == "" {
		d = fmt.Sprintf("/run/user/%d", uid)
	}
	return "unix://" + d + "/podman/podman.sock"
}

// serviceStartTimeout bounds the wait for a Podman service skyward started
// to answer.
const serviceStartTimeout = 15 * time.Second

// startPodmanService starts `podman system service --time=0` on the unix
// socket of endpoint, in a session of its own so that it outlives skyward
// (later commands use it too), and waits until it answers ping. Its output
// goes to podman-service.log beside the socket.
func startPodmanService(ctx context.Context, endpoint string, ping func(context.Context) error) error {
	sock := strings.TrimPrefix(endpoint, "unix://")
	bin, err := exec.LookPath("podman")
	if err != nil {
		return errors.New(`binary "podman" is not installed (not found on PATH) and no Podman service answers at ` + endpoint + `; install Podman (apt-get install podman), or use binary = "docker"`)
	}
	dir := filepath.Dir(sock)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("start the Podman service: %w", err)
	}
	logPath := filepath.Join(dir, "podman-service.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("start the Podman service: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "system", "service", "--time=0", endpoint)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The service outlives this process: it must not hold on to a
	// working directory that may be removed (containers it starts from a
	// deleted one fail with "write child: broken pipe").
	cmd.Dir = "/"
	// With CONTAINER_HOST set the podman CLI is a remote client of that
	// very socket; the service is the local engine.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONTAINER_HOST=") && !strings.HasPrefix(kv, "CONTAINER_CONNECTION=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the Podman service (%s system service): %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(serviceStartTimeout)
	defer deadline.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("the Podman service skyward started (%s system service --time=0 %s) exited (%v): %s", bin, endpoint, werr, lastLine(logPath))
		case <-deadline.C:
			return fmt.Errorf("the Podman service skyward started (%s system service --time=0 %s, pid %d) did not answer within %s: %s", bin, endpoint, cmd.Process.Pid, serviceStartTimeout, lastLine(logPath))
		case <-ctx.Done():
			return fmt.Errorf("start the Podman service: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lastLine is the last non-empty line of the file at path, or a note that
// it has none.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l + " (log: " + path + ")"
	}
	return "no output (log: " + path + ")"
}

// canStartService reports whether a failed ping means that nothing listens
// on the socket (missing, or refused), which starting the service fixes.
func canStartService(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// Process limits that containers get on runtimes whose defaults exceed what
// the host grants (Podman raises nofile and nproc to its own ceilings,
// which a host that forbids raising limits refuses at start).
const (
	maxNofile = 1 << 20
	maxNproc  = 32768
	minNproc  = 256
)

// hostUlimits are explicit nofile and nproc limits within this process's
// own: nofile as the host grants it, nproc a quarter of the host's (the
// count is per user across the host, so a node must leave room for
// everyone else), at most maxNproc.
func hostUlimits() []*container.Ulimit {
	var nofile, nproc unix.Rlimit
	soft, hard := int64(maxNofile), int64(maxNofile)
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile) == nil {
		soft, hard = clampLimit(nofile.Cur, maxNofile), clampLimit(nofile.Max, maxNofile)
	}
	procs := int64(maxNproc)
	if unix.Getrlimit(unix.RLIMIT_NPROC, &nproc) == nil {
		procs = min(clampLimit(nproc.Cur, math.MaxInt32), clampLimit(nproc.Max, math.MaxInt32)) / 4
	}
	procs = max(min(procs, maxNproc), minNproc)
	return []*container.Ulimit{
		{Name: "nofile", Soft: min(soft, hard), Hard: hard},
		{Name: "nproc", Soft: procs, Hard: procs},
	}
}

// clampLimit turns a getrlimit value into an int64 of at most ceiling
// (RLIM_INFINITY is the ceiling).
func clampLimit(v uint64, ceiling int64) int64 {
	if v == unix.RLIM_INFINITY || v > uint64(ceiling) {
		return ceiling
	}
	return int64(v)
}

// ulimitText is how ulimits read in messages: "nofile=20000:20000 nproc=2000:2000".
func ulimitText(us []*container.Ulimit) string {
	parts := make([]string, 0, len(us))
	for _, u := range us {
		parts = append(parts, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
	}
	return strings.Join(parts, " ")
}

// explainRlimit turns the runtime's refusal to set a container's resource
// limits into one line that says what to change; other errors pass as
// they are.
func (p *Provider) explainRlimit(err error) error {
	if err == nil || !strings.Contains(err.Error(), "rlimit") {
		return err
	}
	asked := "its default limits"
	if len(p.ulimits) > 0 {
		asked = ulimitText(p.ulimits) + " (from skyward's own limits)"
	}
	return fmt.Errorf("the %s may not set the container's resource limits to %s on this host: %s; lower skyward's limits (ulimit -n, ulimit -u) before running it, or let the runtime raise them (its service's LimitNOFILE and LimitNPROC)",
		p.engine, asked, oneLine(err.Error()))
}

// oneLine joins the lines of s with "; ".
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ; ")), " ")
}

// describeVersion is what Check tells of the engine that answered:
// "Docker 28.5.2 (API 1.51) at unix:///var/run/docker.sock" or "Podman
// 4.3.1 (API 1.41) at ...".
func describeVersion(v types.Version, endpoint string) string {
	name, version := "Docker", v.Version
	for _, c := range v.Components {
		switch c.Name {
		case "Podman Engine":
			name, version = "Podman", c.Version
		case "nerdctl":
			name, version = "nerdctl", c.Version
		}
	}
	if name == "nerdctl" {
		for _, c := range v.Components {
			if c.Name == "containerd" {
				version += " (containerd " + c.Version + ")"
			}
		}
		return name + " " + version + " (" + endpoint + ")"
	}
	if version == "" {
		version = "(version unknown)"
	}
	s := name + " " + version
	if v.APIVersion != "" {
		s += " (API " + v.APIVersion + ")"
	}
	return s + " at " + endpoint
}
