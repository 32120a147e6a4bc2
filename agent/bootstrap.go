package agent

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RunBootstrap is `skyward agent bootstrap [-root DIR] [-start]`: it reads
// the tar stream of docs/node-protocol.md from stdin, then runs the phases
// env, apt, pip, includes and setup, reporting them as JSON lines on
// stdout, and with -start starts the agent daemon (see startAgent). It
// returns 0 when every phase completed or was skipped, 1 after a failure
// (or a bad stream, reported on stderr) and 2 on bad usage.
//
// Commands run in process groups of their own, which are killed when
// stdout breaks or SIGTERM, SIGINT or SIGHUP arrives. It must run in a
// process of its own: it handles signals for the whole process.
func RunBootstrap(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("skyward agent bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", Root, "skyward's directory on the node")
	start := fs.Bool("start", false, "after the phases, start the agent daemon with the agent.json of the stream")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	// With SIGPIPE notified, a write to a broken stdout fails with EPIPE
	// instead of killing this process and leaving the commands running.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGPIPE, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigc)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigc:
				if sig != syscall.SIGPIPE {
					cancel(fmt.Errorf("interrupted by %v", sig))
				}
			}
		}
	}()
	b := newBootstrap(*root, stdout, cancel)
	b.start = *start
	if f, ok := stdout.(*os.File); ok {
		go watchHangup(ctx, f, func() { b.broken(errors.New("standard output closed")) })
	}
	return b.main(ctx, stdin, stderr)
}

// phaseCmd is one command of a bootstrap phase.
type phaseCmd struct {
	Phase string
	Dir   string
	Env   []string // added to (and overriding) the agent's environment
	Argv  []string // Argv[0] is looked up in PATH unless it holds a slash
}

// bootstrap is one run of RunBootstrap.
type bootstrap struct {
	root string
	// path is the PATH that programs are looked up in and that setup
	// commands start from.
	path string
	// run runs one command, reporting its output lines, and returns an
	// *exitError when it fails; tests replace it.
	run func(ctx context.Context, c phaseCmd) error

	// start: the stream carries agent.json, and the agent daemon is
	// started with it once every phase is done (see startAgent).
	start       bool
	agentConfig []byte

	mu     sync.Mutex
	out    io.Writer
	outErr error                   // the first write error; nothing is written after it
	cancel context.CancelCauseFunc // stops the run when stdout breaks
}

func newBootstrap(root string, out io.Writer, cancel context.CancelCauseFunc) *bootstrap {
	b := &bootstrap{root: root, path: os.Getenv("PATH"), out: out, cancel: cancel}
	if b.path == "" {
		b.path = loginPath
	}
	b.run = b.command
	return b
}

// exitError is a failed phase: its exit code (at least 1) and message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// broken stops the run: its output can no longer be delivered.
func (b *bootstrap) broken(err error) {
	b.mu.Lock()
	if b.outErr == nil {
		b.outErr = err
	}
	b.mu.Unlock()
	b.cancel(err)
}

// emit writes one JSON line, in a single write, flushed.
func (b *bootstrap) emit(l PhaseLine) {
	data, err := json.Marshal(l)
	if err != nil {
		panic(err) // a PhaseLine always encodes
	}
	data = append(data, '\n')
	b.mu.Lock()
	if b.outErr != nil {
		b.mu.Unlock()
		return
	}
	_, err = b.out.Write(data)
	if f, ok := b.out.(interface{ Flush() error }); ok && err == nil {
		err = f.Flush()
	}
	b.mu.Unlock()
	if err != nil {
		b.broken(fmt.Errorf("write output: %w", err))
	}
}

func (b *bootstrap) output(phase, stream, line string) {
	b.emit(PhaseLine{Type: "output", Phase: phase, Stream: stream, Line: line})
}

// phase is one bootstrap phase.
type phase struct {
	name string
	// skip: nothing to do, the phase reports "skipped" whatever its marker.
	skip bool
	// hash is the phase's input hash; "" means always run and keep no
	// marker.
	hash string
	fn   func(ctx context.Context) error
}

func (b *bootstrap) main(ctx context.Context, stdin io.Reader, stderr io.Writer) int {
	recipe, err := b.unpack(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "skyward agent bootstrap: %v\n", err)
		return 1
	}
	// The stream is over. The controller may keep stdin open; a read
	// error, unlike EOF, means that it is gone.
	go func() {
		if _, err := io.Copy(io.Discard, stdin); err != nil {
			b.broken(fmt.Errorf("read input: %w", err))
		}
	}()
	work := filepath.Join(b.root, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		fmt.Fprintf(stderr, "skyward agent bootstrap: %v\n", err)
		return 1
	}
	if !recipe.Includes {
		os.RemoveAll(filepath.Join(b.root, "work.new"))
	}
	wheels, err := b.wheelsHash()
	if err != nil {
		fmt.Fprintf(stderr, "skyward agent bootstrap: %v\n", err)
		return 1
	}
	// An env file written world-readable by an older version stays so
	// when the env phase is skipped; tighten it whatever the phases do.
	if err := os.Chmod(filepath.Join(b.root, "env.json"), 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "skyward agent bootstrap: %v\n", err)
		return 1
	}
	phases := []phase{
		{"env", false, hashOf(recipe.Env), func(context.Context) error { return b.writeEnv(recipe.Env) }},
		{"apt", len(recipe.Apt) == 0, hashOf(sorted(recipe.Apt)), func(ctx context.Context) error { return b.apt(ctx, recipe.Apt) }},
		{"pip", len(recipe.Pip) == 0, hashOf(recipe.Pip, wheels), func(ctx context.Context) error { return b.pip(ctx, recipe.Pip) }},
		{"includes", !recipe.Includes, "", func(context.Context) error { return b.syncIncludes() }},
		{"setup", len(recipe.Setup) == 0, hashOf(recipe.Setup, recipe.Env), func(ctx context.Context) error { return b.setup(ctx, recipe.Setup, recipe.Env) }},
	}
	for _, p := range phases {
		if err := b.runPhase(ctx, p); err != nil {
			fmt.Fprintf(stderr, "skyward agent bootstrap: %s: %v\n", p.name, err)
			return 1
		}
	}
	b.mu.Lock()
	err = b.outErr
	b.mu.Unlock()
	if err != nil {
		fmt.Fprintf(stderr, "skyward agent bootstrap: %v\n", err)
		return 1
	}
	if b.start {
		b.emit(PhaseLine{Type: "agent", Status: "starting"})
		if err := b.startAgent(); err != nil {
			fmt.Fprintf(stderr, "skyward agent bootstrap: start agent: %v\n", err)
			return 1
		}
	}
	return 0
}

// isAgentServe reports whether process pid runs `skyward agent serve`.
func isAgentServe(pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) >= 3 && args[1] == "agent" && args[2] == "serve"
}

// startAgent is `skyward agent serve -detach` after a bootstrap, without
// the second command and process that costs a node just created: it
// writes agent.json (0600: it holds the pool token), stops an agent that
// runs already (SIGTERM, up to 5s, then SIGKILL) and starts the daemon in
// a session of its own.
func (b *bootstrap) startAgent() error {
	cfgPath := filepath.Join(b.root, "agent.json")
	pidPath := filepath.Join(b.root, "agent.pid")
	if err := writeFile(cfgPath, b.agentConfig, 0o600); err != nil {
		return err
	}
	if err := stopPidFile(pidPath, 5*time.Second); err != nil {
		return err
	}
	return detachServe(cfgPath, pidPath, filepath.Join(b.root, "agent.log"))
}

// stopPidFile stops the agent whose pid is in path, if it runs: SIGTERM,
// then SIGKILL after grace; the file is removed. A pid file that outlived
// its agent (a node restarted) may name any process of the new boot: only
// a process running `skyward agent serve` is stopped.
func stopPidFile(path string, grace time.Duration) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 && isAgentServe(pid) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for deadline := time.Now().Add(grace); syscall.Kill(pid, 0) == nil && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// runPhase runs p unless its marker says it is done, and reports it.
func (b *bootstrap) runPhase(ctx context.Context, p phase) error {
	marker := filepath.Join(b.root, "state", p.name+".done")
	if p.skip {
		b.emit(PhaseLine{Type: "phase", Phase: p.name, Status: "skipped"})
		return nil
	}
	if p.hash != "" {
		if old, err := os.ReadFile(marker); err == nil && string(old) == p.hash {
			b.emit(PhaseLine{Type: "phase", Phase: p.name, Status: "skipped"})
			return nil
		}
	}
	b.emit(PhaseLine{Type: "phase", Phase: p.name, Status: "started"})
	start := time.Now()
	// The marker goes first: a phase that fails halfway is not done.
	err := os.Remove(marker)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = p.fn(ctx)
	}
	if err == nil && p.hash != "" {
		err = writeFile(marker, []byte(p.hash), 0o644)
	}
	if err == nil {
		// Output that could not be delivered makes the phase fail: its
		// end would not be reported either.
		err = context.Cause(ctx)
	}
	if err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		os.Remove(marker)
		b.emit(PhaseLine{Type: "phase", Phase: p.name, Status: "failed", ExitCode: code, Error: err.Error()})
		return err
	}
	b.emit(PhaseLine{Type: "phase", Phase: p.name, Status: "completed", DurationMS: max(time.Since(start).Milliseconds(), 1)})
	return nil
}

// unpack reads recipe.json, then writes wheels/ under root (replacing what
// was there) and includes/ under root/work.new.
func (b *bootstrap) unpack(r io.Reader) (*Recipe, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	if hdr.Name != "recipe.json" {
		return nil, fmt.Errorf("read recipe: the stream starts with %q, not recipe.json", hdr.Name)
	}
	var recipe Recipe
	if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&recipe); err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	if b.start {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("read agent.json: with -start, recipe.json is followed by agent.json, and the stream ended")
		} else if err != nil {
			return nil, fmt.Errorf("read agent.json: %w", err)
		}
		if hdr.Name != "agent.json" {
			return nil, fmt.Errorf("read agent.json: with -start, recipe.json is followed by agent.json, not %q", hdr.Name)
		}
		if b.agentConfig, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
			return nil, fmt.Errorf("read agent.json: %w", err)
		}
		if !json.Valid(b.agentConfig) {
			return nil, errors.New("read agent.json: not JSON")
		}
	}
	staging, wheels := filepath.Join(b.root, "work.new"), filepath.Join(b.root, "wheels")
	for _, dir := range []string{staging, wheels} {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	var dirs []dirMode
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read stream: %w", err)
		}
		top, rel, err := entryPath(hdr.Name)
		if err != nil {
			return nil, err
		}
		base := map[string]string{"includes": staging, "wheels": wheels}[top]
		if rel == "" {
			continue // the top directory itself
		}
		dst, err := safePath(base, rel)
		if err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		if err := extract(tr, hdr, dst, &dirs); err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	}
	// Directory modes last, deepest first: a read-only directory must not
	// refuse its own entries.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, dirs[i].mode); err != nil {
			return nil, err
		}
	}
	return &recipe, nil
}

// entryPath splits a tar entry name into its top directory (includes or
// wheels) and the slash-separated rest. Absolute names and names with a
// ".." element are refused.
func entryPath(name string) (top, rel string, err error) {
	if strings.HasPrefix(name, "/") {
		return "", "", fmt.Errorf("refusing tar entry %q: absolute path", name)
	}
	var elems []string
	for _, e := range strings.Split(name, "/") {
		switch e {
		case "..":
			return "", "", fmt.Errorf("refusing tar entry %q: path leaves its directory", name)
		case "", ".":
		default:
			elems = append(elems, e)
		}
	}
	if len(elems) == 0 || (elems[0] != "includes" && elems[0] != "wheels") {
		return "", "", fmt.Errorf("unexpected tar entry %q: want includes/... or wheels/...", name)
	}
	return elems[0], strings.Join(elems[1:], "/"), nil
}

// safePath joins base and rel, refusing to go through a symbolic link that
// an earlier entry created: it could point anywhere.
func safePath(base, rel string) (string, error) {
	p := base
	elems := strings.Split(rel, "/")
	for _, e := range elems[:len(elems)-1] {
		p = filepath.Join(p, e)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", errors.New("path goes through a symbolic link")
		}
	}
	return filepath.Join(base, filepath.FromSlash(rel)), nil
}

type dirMode struct {
	path string
	mode fs.FileMode
}

// extract writes one tar entry at dst. Directory modes are collected in
// dirs, to be set once every entry is written.
func extract(r io.Reader, hdr *tar.Header, dst string, dirs *[]dirMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	mode := fs.FileMode(hdr.Mode).Perm()
	if hdr.Mode&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		*dirs = append(*dirs, dirMode{dst, mode})
		return nil
	case tar.TypeSymlink:
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		return os.Symlink(hdr.Linkname, dst)
	case tar.TypeReg:
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		// Chmod, unlike the mode given at creation, ignores the umask.
		if err := os.Chmod(dst, mode); err != nil {
			return err
		}
		return os.Chtimes(dst, hdr.ModTime, hdr.ModTime)
	}
	return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
}

func (b *bootstrap) writeEnv(env map[string]string) error {
	if env == nil {
		env = map[string]string{}
	}
	data, err := json.Marshal(env)
	if err != nil {
		return err
	}
	// The env may hold secrets: only root (the agent) reads it.
	return writeFile(filepath.Join(b.root, "env.json"), data, 0o600)
}

func (b *bootstrap) apt(ctx context.Context, pkgs []string) error {
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if err := b.run(ctx, phaseCmd{Phase: "apt", Dir: "/", Env: env, Argv: []string{"apt-get", "update", "-q"}}); err != nil {
		return err
	}
	argv := append([]string{"apt-get", "install", "-y", "-q", "--no-install-recommends"}, pkgs...)
	return b.run(ctx, phaseCmd{Phase: "apt", Dir: "/", Env: env, Argv: argv})
}

// pip installs items into root/venv, creating it when missing, with uv
// when it is on PATH, else with python3's venv and pip.
func (b *bootstrap) pip(ctx context.Context, items []string) error {
	venv := filepath.Join(b.root, "venv")
	py := filepath.Join(venv, "bin", "python")
	_, err := os.Stat(py)
	missing := err != nil
	var cmds [][]string
	if _, err := lookPath("uv", b.path); err == nil {
		if missing {
			cmds = append(cmds, []string{"uv", "venv", venv})
		}
		cmds = append(cmds, append([]string{"uv", "pip", "install", "--python", py}, items...))
	} else {
		if missing {
			cmds = append(cmds, []string{"python3", "-m", "venv", venv})
		}
		cmds = append(cmds, append([]string{filepath.Join(venv, "bin", "pip"), "install", "--disable-pip-version-check", "--no-input"}, items...))
	}
	for _, argv := range cmds {
		if err := b.run(ctx, phaseCmd{Phase: "pip", Dir: "/", Argv: argv}); err != nil {
			return err
		}
	}
	return nil
}

// syncIncludes replaces the work directory with the staged includes, so
// that files removed locally are removed here too.
func (b *bootstrap) syncIncludes() error {
	work, staging, old := filepath.Join(b.root, "work"), filepath.Join(b.root, "work.new"), filepath.Join(b.root, "work.old")
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(work, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// A directory of a lower image layer (a prebaked image) cannot be
		// renamed on overlay file systems (EXDEV): remove it instead.
		if !errors.Is(err, syscall.EXDEV) {
			return fmt.Errorf("move %s aside: %w", work, err)
		}
		if err := os.RemoveAll(work); err != nil {
			return fmt.Errorf("remove %s: %w", work, err)
		}
	}
	if err := os.Rename(staging, work); err != nil {
		return fmt.Errorf("move the new includes into %s: %w", work, err)
	}
	return os.RemoveAll(old)
}

// setup runs each command with /bin/sh -c in the work directory, the
// image's env added and the venv's bin first on PATH, and stops at the
// first failure.
func (b *bootstrap) setup(ctx context.Context, cmds []string, imageEnv map[string]string) error {
	path := b.path
	if p, ok := imageEnv["PATH"]; ok {
		path = p
	}
	venvBin := filepath.Join(b.root, "venv", "bin")
	if fi, err := os.Stat(venvBin); err == nil && fi.IsDir() {
		path = venvBin + string(os.PathListSeparator) + path
	}
	env := append(envList(imageEnv), "PATH="+path)
	work := filepath.Join(b.root, "work")
	for _, c := range cmds {
		if err := b.run(ctx, phaseCmd{Phase: "setup", Dir: work, Env: env, Argv: []string{"/bin/sh", "-c", c}}); err != nil {
			return err
		}
	}
	return nil
}

// command runs c through the reaper in a process group of its own, with
// stdin from /dev/null, and reports every line it writes as it comes.
// When the leader exits the rest of its group is killed; the whole group is
// killed when ctx is done.
func (b *bootstrap) command(ctx context.Context, c phaseCmd) error {
	path, err := lookPath(c.Argv[0], b.path)
	if err != nil {
		b.output(c.Phase, "stderr", err.Error())
		return &exitError{code: 127, msg: err.Error()}
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	outR, outW, err1 := os.Pipe()
	errR, errW, err2 := os.Pipe()
	if err := errors.Join(err1, err2); err != nil {
		closeAll(outR, outW, errR, errW)
		return err
	}
	attr := &syscall.ProcAttr{
		Dir:   c.Dir,
		Env:   mergeEnv(os.Environ(), c.Env),
		Files: []uintptr{devnull.Fd(), outW.Fd(), errW.Fd()},
		Sys:   phaseSysProcAttr(),
	}
	p, err := children.start(path, c.Argv, attr, true)
	closeAll(outW, errW)
	if err != nil {
		closeAll(outR, errR)
		msg := fmt.Sprintf("start %s: %v", c.Argv[0], err)
		b.output(c.Phase, "stderr", msg)
		return &exitError{code: 126, msg: msg}
	}
	var wg sync.WaitGroup
	for stream, r := range map[string]*os.File{"stdout": outR, "stderr": errR} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.copyLines(c.Phase, stream, r)
		}()
	}
	stop := context.AfterFunc(ctx, func() { _ = children.signalGroup(p, syscall.SIGKILL) })
	<-p.done
	stop()
	// The group is gone; what it wrote is still in the pipes. A process
	// that left the group may hold them open: do not wait for it long.
	for _, r := range []*os.File{outR, errR} {
		_ = r.SetReadDeadline(time.Now().Add(outputGrace))
	}
	wg.Wait()
	closeAll(outR, errR)
	if p.err != nil {
		return p.err
	}
	return waitError(p.status, ctx)
}

// waitError turns a wait status into nil or an *exitError.
func waitError(ws syscall.WaitStatus, ctx context.Context) error {
	var e *exitError
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return nil
	case ws.Exited():
		e = &exitError{code: ws.ExitStatus(), msg: fmt.Sprintf("exit status %d", ws.ExitStatus())}
	case ws.Signaled():
		e = &exitError{code: 128 + int(ws.Signal()), msg: "signal: " + ws.Signal().String()}
	default:
		e = &exitError{code: 1, msg: fmt.Sprintf("wait status %#x", uint32(ws))}
	}
	if cause := context.Cause(ctx); cause != nil {
		e.msg += " (" + cause.Error() + ")"
	}
	return e
}

// copyLines reports r's lines; a line longer than the buffer is reported
// in pieces.
func (b *bootstrap) copyLines(phase, stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err == nil {
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
		}
		if len(line) > 0 || err == nil {
			b.output(phase, stream, string(line))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// watchHangup calls broken once f, an output, is no longer read (the read
// end of a pipe closed, a terminal hung up), until ctx is done.
func watchHangup(ctx context.Context, f *os.File, broken func()) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		var revents int16
		perr := rc.Control(func(fd uintptr) {
			// No events asked: poll reports only errors and hangups.
			fds := []unix.PollFd{{Fd: int32(fd)}}
			var n int
			n, err = unix.Poll(fds, 200)
			if n > 0 {
				revents = fds[0].Revents
			}
		})
		switch {
		case perr != nil:
			return
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return
		case revents&(unix.POLLERR|unix.POLLHUP) != 0:
			broken()
			return
		case revents != 0:
			return // POLLNVAL and the like: nothing to watch
		}
	}
}

// lookPath finds file in the directories of path, as a shell would. A file
// with a slash is used as is.
func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		if isExecutable(file) {
			return file, nil
		}
		return "", fmt.Errorf("%s: not an executable file", file)
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		if p := filepath.Join(dir, file); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found", file)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// mergeEnv returns base with extra's variables added, an extra variable
// replacing one of base with the same name.
func mergeEnv(base, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra))
	index := map[string]int{}
	for _, kv := range slices.Concat(base, extra) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// wheelsHash hashes the names and contents of the uploaded local pip files.
func (b *bootstrap) wheelsHash() (string, error) {
	h := sha256.New()
	dir := filepath.Join(b.root, "wheels")
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fh := sha256.New()
		if _, err := io.Copy(fh, f); err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%x\n", filepath.ToSlash(rel), fh.Sum(nil))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash wheels: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashOf is the hex sha256 of vs' JSON encoding (map keys sorted).
func hashOf(vs ...any) string {
	b, err := json.Marshal(vs)
	if err != nil {
		panic(err) // strings, slices and maps of strings always encode
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

// envList turns m into NAME=value entries, sorted by name.
func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// writeFile writes data to path through a temporary file and a rename,
// with mode regardless of the umask.
func writeFile(path string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// A temporary name of its own: writers of one path in other
	// processes (the controller's sum cache) never share it.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
