package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skyward-sh/skyward/agent"
	"github.com/skyward-sh/skyward/internal/fileset"
	"github.com/skyward-sh/skyward/internal/hostnet"
)

// Paths on a node (docs/node-protocol.md).
const (
	agentPath  = agent.BinaryPath
	configPath = agent.Root + "/agent.json"
	pidPath    = agent.Root + "/agent.pid"
	logPath    = agent.Root + "/agent.log"
	wheelsDir  = agent.Root + "/wheels"
)

// ErrAgentDown is wrapped by AgentStatus when no agent answers.
var ErrAgentDown = errors.New("agent is not running")

// AgentConfig is the agent's configuration, written to agent.json.
type AgentConfig = agent.Config

// Status is what an agent reports about itself.
type Status = agent.Status

// Sudo returns cmd to run as root: as is for root, else through sudo -n
// (and a guard of its own as root, see Endpoint.Guard).
func (c *Client) Sudo(cmd string) string {
	if c.ep.User == "" || c.ep.User == "root" {
		return cmd
	}
	return sudoPrefix + shellQuote(c.guard(cmd))
}

const sudoPrefix = "sudo -n sh -c "

// sudoBare is Sudo without the guard inside sudo, for a skyward command
// that watches its session itself; run it with run, unguarded.
func (c *Client) sudoBare(cmd string) string {
	if c.ep.User == "" || c.ep.User == "root" {
		return cmd
	}
	return sudoPrefix + shellQuote(cmd)
}

// guard wraps cmd in `skyward agent guard` when the endpoint asks for it
// and the agent binary is on the node; before the binary is uploaded the
// command runs as it is. A command that Sudo guarded already, as root,
// gets no second guard as the login user: the one as root sees the
// session end as well (its standard output is the session's) and kills
// everything the first could; one more would only be one more process
// start per command.
func (c *Client) guard(cmd string) string {
	if !c.ep.Guard || strings.HasPrefix(cmd, sudoPrefix+"'"+guardPrefix()) {
		return cmd
	}
	q := shellQuote(cmd)
	return guardPrefix() + "sh -c " + q + "; else exec sh -c " + q + "; fi"
}

// guardPrefix is how guard's command begins.
func guardPrefix() string {
	return fmt.Sprintf("if [ -x %[1]s ]; then exec %[1]s agent guard -- ", agentPath)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// EnsureAgent makes sure the node runs the same skyward binary as
// localPath and reports whether it installed it. The sha256 written beside
// the installed binary tells whether it is current; only when it is not is
// the binary streamed to the node (after checking that the node's
// architecture runs it), in one command that checks its sha256 before
// putting it in place, as root.
func EnsureAgent(ctx context.Context, c *Client, localPath string) (bool, error) {
	name := c.ep.name()
	sum, err := agent.FileSum(localPath)
	if err != nil {
		return false, fmt.Errorf("%s: agent: %w", name, err)
	}
	// The installed sum, whether the node can gunzip, and the machine, in
	// one round trip.
	out, err := c.Output(ctx, "cat "+agent.BinarySumPath+" 2>/dev/null; echo; command -v gzip >/dev/null 2>&1 && echo gzip; uname -m")
	if err != nil {
		return false, fmt.Errorf("%s: agent: %w", name, err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > 0 && strings.TrimSpace(lines[0]) == sum {
		return false, nil
	}
	if err := checkArch(localPath, strings.TrimSpace(lines[len(lines)-1])); err != nil {
		return false, fmt.Errorf("%s: agent: %w", name, err)
	}
	gz := slices.Contains(lines[1:], "gzip") && !c.ep.nearby()
	if err := uploadAgent(ctx, c, localPath, sum, gz, ""); err != nil {
		return false, fmt.Errorf("%s: agent: %w", name, err)
	}
	return true, nil
}

// InstallAgent is EnsureAgent for a node the provider has just created,
// where no binary can be current yet: a node nearby (this machine, or one
// of its links) gets it at once, with the architecture checked by the
// same command, sparing the round trip that asks the node first. A node
// farther away is asked first (whether it can gunzip), as by EnsureAgent.
func InstallAgent(ctx context.Context, c *Client, localPath string) error {
	if !c.ep.nearby() {
		_, err := EnsureAgent(ctx, c, localPath)
		return err
	}
	name := c.ep.name()
	sum, err := agent.FileSum(localPath)
	if err != nil {
		return fmt.Errorf("%s: agent: %w", name, err)
	}
	want, err := binaryMachine(localPath)
	if err != nil {
		return fmt.Errorf("%s: agent: %w", name, err)
	}
	if err := uploadAgent(ctx, c, localPath, sum, false, want); err != nil {
		var ee *ExitError
		if errors.As(err, &ee) && ee.Code == archMismatchExit {
			return fmt.Errorf("%s: agent: %w", name, checkArch(localPath, lastLine(ee.Stderr)))
		}
		return fmt.Errorf("%s: agent: %w", name, err)
	}
	return nil
}

// archMismatchExit is the exit code of the upload command on a node whose
// machine the binary is not built for; its last line of stderr is then
// `uname -m`.
const archMismatchExit = 95

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSpace(s[strings.LastIndexByte(s, '\n')+1:])
}

// uploadAgent streams the binary at localPath, whose sha256 is sum, to
// the node and installs it there (gzipped with gz). With machine set, the
// command first checks that the node's `uname -m` is machine.
func uploadAgent(ctx context.Context, c *Client, localPath, sum string, gz bool, machine string) error {
	// A node across a network, with gzip, gets the binary compressed: a
	// third of its size, which is what a cloud node's upload costs. A node
	// nearby (a container here) gets it as it is: there, compressing costs
	// more than it saves. Either way the bytes are
	// read (and compressed) once per binary, however many nodes take them,
	// and go out in one write: no file read, no buffer per 32 KB packet.
	data, err := agentBody(localPath, sum, gz)
	if err != nil {
		return err
	}
	body := bytes.NewReader(data)
	script := uploadAgentScript(sum, gz)
	if machine != "" {
		script = archCheckScript(machine) + script
	}
	// The sum goes last: an upload cut short leaves no sum that matches.
	if _, err := c.OutputIn(ctx, c.Sudo(script), body); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return nil
}

// archCheckScript exits with archMismatchExit, naming the machine on
// stderr, unless `uname -m` is machine (or its other name).
func archCheckScript(machine string) string {
	names := machine
	if machine == "aarch64" {
		names = "aarch64|arm64"
	}
	// The kernel's own file, where it has one, spares an exec of uname.
	return fmt.Sprintf(`{ read -r m </proc/sys/kernel/arch; } 2>/dev/null || m=$(uname -m); case "$m" in %s) ;; *) echo "$m" >&2; exit %d;; esac; `, names, archMismatchExit)
}

// binaryMachine is the `uname -m` of the machines that run the ELF binary
// at path.
func binaryMachine(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	m, ok := map[elf.Machine]string{elf.EM_X86_64: "x86_64", elf.EM_AARCH64: "aarch64"}[f.Machine]
	if !ok {
		return "", fmt.Errorf("%s: built for %s, which skyward nodes do not run", path, f.Machine)
	}
	return m, nil
}

// nearby reports whether the endpoint is reached without a proxy command
// on this machine (a container's published port) or on the network of one
// of its interfaces (a container's own address on a bridge of this
// machine, a host on the same subnet): there the link is faster than gzip,
// and the binary goes uncompressed.
func (ep Endpoint) nearby() bool {
	return ep.nearbyOn(net.InterfaceAddrs)
}

func (ep Endpoint) nearbyOn(interfaceAddrs func() ([]net.Addr, error)) bool {
	if ep.ProxyCommand != "" {
		return false
	}
	if ep.Host == "localhost" {
		return true
	}
	ip := net.ParseIP(ep.Host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, err := interfaceAddrs()
	return err == nil && hostnet.OnLink(ip, addrs)
}

var (
	bodyMu    sync.Mutex
	bodyCache = map[bodyKey]*bodyEntry{}
)

type bodyKey struct {
	sum string
	gz  bool
}

type bodyEntry struct {
	once sync.Once
	data []byte
	err  error
}

// agentBody returns the binary at path, whose sha256 is sum, as it is or
// compressed with gzip; the result is kept for the process's life.
func agentBody(path, sum string, gz bool) ([]byte, error) {
	bodyMu.Lock()
	e := bodyCache[bodyKey{sum, gz}]
	if e == nil {
		e = &bodyEntry{}
		bodyCache[bodyKey{sum, gz}] = e
	}
	bodyMu.Unlock()
	e.once.Do(func() {
		if !gz {
			e.data, e.err = os.ReadFile(path)
			return
		}
		e.data, e.err = gzipFile(path)
	})
	return e.data, e.err
}

func gzipFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(zw, f); err != nil {
		return nil, fmt.Errorf("compress %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// uploadAgentScript installs the binary on its standard input as
// agentPath, if its sha256 is sum, and records the sum beside it.
// With gz, the binary comes compressed with gzip.
func uploadAgentScript(sum string, gz bool) string {
	tmp := path.Dir(agentPath) + "/.skyward.upload"
	read := "cat"
	if gz {
		read = "gzip -dc"
	}
	return fmt.Sprintf(`set -e; [ -d %[1]s ] || mkdir -p %[1]s; %[6]s > %[2]s; `+sumScript("%[2]s", "got")+`; `+
		`if [ "$got" != %[3]s ]; then rm -f %[2]s; echo "the uploaded binary's sha256 is $got, not %[3]s" >&2; exit 1; fi; `+
		`chmod 0755 %[2]s; mv -f %[2]s %[4]s; echo %[3]s > %[5]s`,
		path.Dir(agentPath), tmp, sum, agentPath, agent.BinarySumPath, read)
}

// sumScript sets the shell variable v to the sha256 of file (a shell
// word), empty when it cannot be computed: with OpenSSL's digest where the
// node has it (several times faster than coreutils' sha256sum where the
// CPU has SHA instructions: 30 against 85 ms for the 42 MB binary here),
// else with sha256sum; the shell cuts the name off.
func sumScript(file, v string) string {
	return fmt.Sprintf(`%[2]s=$(openssl dgst -sha256 -r %[1]s 2>/dev/null || sha256sum %[1]s) || %[2]s=; %[2]s=${%[2]s%%%% *}`, file, v)
}

// checkArch makes sure a node whose `uname -m` is machine runs the ELF
// binary at localPath.
func checkArch(localPath, machine string) error {
	want, err := binaryMachine(localPath)
	if err != nil {
		return err
	}
	got := machine
	if got == "arm64" {
		got = "aarch64"
	}
	if got != want {
		goarch := map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[got]
		return fmt.Errorf("node is %s but the skyward binary is built for %s; build skyward for linux/%s", got, want, goarch)
	}
	return nil
}

// Recipe is an image recipe to bootstrap a node with.
type Recipe struct {
	Env map[string]string
	Apt []string
	Pip []string
	// LocalPip are the items of Pip that name local files or directories
	// (wheels, projects), relative to Dir or absolute: they are sent
	// with the bootstrap and installed from the node's copy.
	LocalPip []string
	Setup    []string
	Includes []string // relative to Dir, or absolute
	// Exclude leaves out of every include the names it matches (the
	// image's excludes, .gitignore patterns compiled by the caller); nil
	// leaves out nothing.
	Exclude fileset.Matcher
	Dir     string
}

// PhaseEvent reports a bootstrap phase (Status set) or one line of its
// output (Line set).
type PhaseEvent struct {
	Phase    string
	Status   string // started, completed, skipped, failed; "" for output
	Stream   string
	Line     string
	ExitCode int
	Duration time.Duration
	Error    string
}

// PhaseError is a bootstrap phase that failed on a node.
type PhaseError struct {
	Address  string
	Phase    string
	ExitCode int
	// Reason is what the node said went wrong ("" when it is only the
	// exit status): for a phase the agent carries out itself (env,
	// includes) it is the whole story.
	Reason string
	Tail   []string // the last lines of the phase's output
}

func (e *PhaseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: bootstrap: %s: exit status %d", e.Address, e.Phase, e.ExitCode)
	if e.Reason != "" && e.Reason != fmt.Sprintf("exit status %d", e.ExitCode) {
		b.WriteString(": " + e.Reason)
	}
	for _, l := range e.Tail {
		b.WriteString("\n  " + l)
	}
	return b.String()
}

// tailLines is how many lines of a failed phase's output an error keeps.
const tailLines = 20

// Bootstrap streams the recipe, the includes and the local pip files to
// `skyward agent bootstrap` on the node and follows its phases live. Every
// local path is checked before anything is sent, and a stream that cannot
// be written in full stops the remote bootstrap rather than ending cleanly.
func Bootstrap(ctx context.Context, c *Client, r Recipe, events func(PhaseEvent)) error {
	return bootstrap(ctx, c, r, nil, events, nil)
}

// BootstrapAndStart is Bootstrap followed by StartAgent(cfg) on a node
// just created, in the bootstrap's own command: the agent starts once
// every phase is done, sparing a second command (and, through sudo, its
// login) on every new node. starting is called when the phases are done
// and the agent starts; it returns once the agent answers.
func BootstrapAndStart(ctx context.Context, c *Client, r Recipe, cfg AgentConfig, events func(PhaseEvent), starting func()) error {
	data, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := bootstrap(ctx, c, r, data, events, starting); err != nil {
		return err
	}
	return waitAgent(ctx, c)
}

// bootstrap is Bootstrap, and with agentConfig set, the start of the
// agent with that configuration after it, announced to starting.
func bootstrap(ctx context.Context, c *Client, r Recipe, agentConfig []byte, events func(PhaseEvent), starting func()) error {
	name := c.ep.name()
	files, err := r.files()
	if err != nil {
		return fmt.Errorf("%s: bootstrap: %w", name, err)
	}
	files.agentConfig = agentConfig
	// Unguarded: the bootstrap kills its commands itself once its standard
	// output (the session's) closes; a guard would be one more process.
	cmd := agentPath + " agent bootstrap"
	if agentConfig != nil {
		cmd += " -start"
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := files.write(pw)
		if err != nil {
			cancel() // the node must not take a cut stream for a whole one
		}
		pw.CloseWithError(err)
		werr <- err
	}()
	outR, outW := io.Pipe()
	var stderr tailBuffer
	done := make(chan struct{})
	tails := map[string][]string{}
	var failed *PhaseError
	go func() {
		defer close(done)
		agent.ReadLines(outR, maxLine, func(line string) {
			var l agent.PhaseLine
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				l = agent.PhaseLine{Type: "output", Stream: "stdout", Line: line}
			}
			if l.Type == "agent" {
				if starting != nil {
					starting()
				}
				return
			}
			ev := PhaseEvent{Phase: l.Phase, Status: l.Status, Stream: l.Stream, Line: l.Line, ExitCode: l.ExitCode,
				Duration: time.Duration(l.DurationMS) * time.Millisecond, Error: l.Error}
			if l.Type == "output" {
				ev.Status = ""
				t := append(tails[l.Phase], l.Line)
				if len(t) > tailLines {
					t = t[len(t)-tailLines:]
				}
				tails[l.Phase] = t
			}
			if ev.Status == "failed" {
				failed = &PhaseError{Address: name, Phase: l.Phase, ExitCode: l.ExitCode, Reason: l.Error, Tail: tails[l.Phase]}
			}
			if events != nil {
				events(ev)
			}
		})
	}()
	code, err := c.run(rctx, c.sudoBare(cmd), false, pr, outW, &stderr)
	outW.Close()
	<-done
	pr.CloseWithError(io.ErrClosedPipe)
	if wErr := <-werr; wErr != nil && !errors.Is(wErr, io.ErrClosedPipe) {
		return fmt.Errorf("%s: bootstrap: %w", name, wErr)
	}
	switch {
	case err != nil:
		return fmt.Errorf("%s: bootstrap: %w", name, err)
	case failed != nil:
		return failed
	case code != 0:
		return fmt.Errorf("%s: bootstrap: exit status %d: %s", name, code, strings.TrimSpace(stderr.lastLines(tailLines)))
	}
	return nil
}

// maxLine bounds one line of bootstrap output; the rest of a longer line
// is dropped.
const maxLine = 1 << 20

// bootstrapFiles is what a bootstrap sends: the recipe as the node sees it
// and the local trees behind it.
type bootstrapFiles struct {
	recipe []byte
	// agentConfig, when set, follows the recipe as agent.json (for
	// `agent bootstrap -start`).
	agentConfig []byte
	trees       []tree
}

// tree is a local file or directory sent as prefix/name/...
type tree struct {
	src      string // resolved: a symlink given as the root is followed
	prefix   string
	name     string
	excludes fileset.Matcher // nil: none
}

// files checks every local path of the recipe and resolves it: includes
// and local pip items must exist, and no two of either may share a base
// name, as they land in one directory on the node.
func (r Recipe) files() (*bootstrapFiles, error) {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(r.Dir, p)
	}
	var f bootstrapFiles
	seen := map[string]string{}
	add := func(what, item, prefix string, excludes fileset.Matcher) error {
		local := abs(item)
		src, err := filepath.EvalSymlinks(local)
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, item, err)
		}
		name := filepath.Base(local)
		if other, dup := seen[prefix+"/"+name]; dup {
			return fmt.Errorf("%s %s and %s have the same name %q, and would land in the same place on the node", what, other, item, name)
		}
		seen[prefix+"/"+name] = item
		f.trees = append(f.trees, tree{src: src, prefix: prefix, name: name, excludes: excludes})
		return nil
	}
	for _, inc := range r.Includes {
		if err := add("includes", inc, "includes", r.Exclude); err != nil {
			return nil, err
		}
	}
	pip := make([]string, len(r.Pip))
	for i, item := range r.Pip {
		pip[i] = item
		if slices.Contains(r.LocalPip, item) {
			if err := add("pip", item, "wheels", nil); err != nil {
				return nil, err
			}
			pip[i] = wheelsDir + "/" + filepath.Base(abs(item))
		}
	}
	recipe, err := json.Marshal(agent.Recipe{Env: r.Env, Apt: r.Apt, Pip: pip, Setup: r.Setup, Includes: len(r.Includes) > 0})
	if err != nil {
		return nil, err
	}
	f.recipe = recipe
	return &f, nil
}

// write writes the tar stream of the protocol: recipe.json,
// includes/<base>/..., wheels/<base>[/...].
func (f *bootstrapFiles) write(w io.Writer) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "recipe.json", Mode: 0o644, Size: int64(len(f.recipe)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(f.recipe); err != nil {
		return err
	}
	if f.agentConfig != nil {
		if err := tw.WriteHeader(&tar.Header{Name: "agent.json", Mode: 0o600, Size: int64(len(f.agentConfig)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.agentConfig); err != nil {
			return err
		}
	}
	for _, t := range f.trees {
		if err := addTree(tw, t); err != nil {
			return fmt.Errorf("%s %s: %w", t.prefix, t.name, err)
		}
	}
	return tw.Close()
}

// writeBootstrapTar checks r's files and writes its tar stream.
func writeBootstrapTar(w io.Writer, r Recipe) error {
	f, err := r.files()
	if err != nil {
		return err
	}
	return f.write(w)
}

// addTree adds t.src (a file or directory) as t.prefix/t.name/...,
// leaving out names matching t.excludes below the root; it walks as the
// planner's includes hash does.
func addTree(tw *tar.Writer, t tree) error {
	return fileset.Walk(t.src, t.excludes, func(rel string, info fs.FileInfo, p string) error {
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			var err error
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		_, sub, _ := strings.Cut(rel, "/")
		hdr.Name = path.Join(t.prefix, t.name, sub)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
}

// StartAgent writes the agent's configuration, stops an agent already
// running, starts `skyward agent serve` detached from the SSH session and
// waits until it answers. Unless restart is set (a new binary was
// installed), an agent that answers and runs with exactly this
// configuration is left alone, so that its running work goes on.
func StartAgent(ctx context.Context, c *Client, cfg AgentConfig, restart bool) error {
	name := c.ep.name()
	data, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if !restart {
		cur, err := c.Output(ctx, c.Sudo("cat "+configPath+" 2>/dev/null || true"))
		if err == nil && bytes.Equal(cur, data) {
			if _, err := AgentStatus(ctx, c); err == nil {
				return nil
			}
		}
	}
	// One command, the configuration on its standard input: write it
	// (0600: it holds the token), stop an agent already running, and start
	// `skyward agent serve -detach`, which starts the daemon in a session
	// of its own, so that the end of this SSH session (which kills the
	// session's process group) spares it.
	script := fmt.Sprintf("set -e; umask 077; mkdir -p %[1]s; cat > %[2]s.new; mv -f %[2]s.new %[2]s; %[3]s; "+
		"%[4]s agent serve -detach -config %[2]s -pid-file %[5]s -log %[6]s </dev/null",
		path.Dir(configPath), configPath, stopScript(), agentPath, pidPath, logPath)
	if _, err := c.OutputIn(ctx, c.Sudo(script), bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%s: start agent: %w", name, err)
	}
	return waitAgent(ctx, c)
}

// waitAgent waits until the agent just started answers, for up to 15s;
// one that does not is reported with the tail of its log.
func waitAgent(ctx context.Context, c *Client) error {
	name := c.ep.name()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		_, err := AgentStatus(wctx, c)
		if err == nil {
			return nil
		}
		select {
		case <-wctx.Done():
			logTail, _ := c.Output(ctx, c.Sudo("tail -n 20 "+logPath))
			return fmt.Errorf("%s: start agent: it did not answer: %w\n%s", name, err, strings.TrimSpace(string(logTail)))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// StopAgent stops the node's agent, if one runs: SIGTERM, up to 5s, then
// SIGKILL.
func StopAgent(ctx context.Context, c *Client) error {
	if _, err := c.Output(ctx, c.Sudo(stopScript())); err != nil {
		return fmt.Errorf("%s: stop agent: %w", c.ep.name(), err)
	}
	return nil
}

// stopScript stops the agent whose pid is in pidPath, if it runs. A pid
// file that outlived its agent (a node restarted) may name any process of
// the new boot, this script's own shell included: only a process running
// `skyward agent serve` is stopped.
func stopScript() string {
	return fmt.Sprintf(`pid=$(cat %s 2>/dev/null || true); if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | grep -q '^[^ ]* agent serve '; then kill "$pid"; i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -9 "$pid" 2>/dev/null || true; fi; rm -f %s`, pidPath, pidPath)
}

// AgentStatus asks the node's agent for its status, through an SSH
// direct-tcpip channel to its loopback control address.
func AgentStatus(ctx context.Context, c *Client) (*Status, error) {
	name := c.ep.name()
	hc := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := c.conn.Dial("tcp", addr)
				if err != nil {
					return nil, fmt.Errorf("%w: %v", ErrAgentDown, err)
				}
				return conn, nil
			},
			DisableKeepAlives: true,
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+agent.ControlAddr+"/v1/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: agent status: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: agent status: %s", name, resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("%s: agent status: %w", name, err)
	}
	return &st, nil
}

// AnnounceMember tells the head's agent, reached over c, that node (an
// index above 0) of its pool has the private address addr, and that the
// pool has numNodes nodes: the head then
// admits that node's join from that address only. It retries while the
// head's agent does not answer yet (it may be starting), until ctx ends.
func AnnounceMember(ctx context.Context, c *Client, token string, node int, addr string, numNodes int) error {
	name := c.ep.name()
	body, err := json.Marshal(map[string]any{"addr": addr, "num_nodes": numNodes})
	if err != nil {
		return err
	}
	var last error
	for {
		last = announceOnce(ctx, c, token, node, body)
		if last == nil {
			return nil
		}
		if !errors.Is(last, ErrAgentDown) {
			return fmt.Errorf("%s: announce node %d: %w", name, node, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: announce node %d: %w (last: %v)", name, node, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func announceOnce(ctx context.Context, c *Client, token string, node int, body []byte) error {
	return putHead(ctx, c, token, fmt.Sprintf("/v1/members/%d", node), body)
}

// SetPoolSize tells the head's agent, reached over c, that its pool has
// numNodes nodes now (after some were removed): it forgets the others.
func SetPoolSize(ctx context.Context, c *Client, token string, numNodes int) error {
	body, err := json.Marshal(map[string]int{"num_nodes": numNodes})
	if err != nil {
		return err
	}
	if err := putHead(ctx, c, token, "/v1/pool", body); err != nil {
		return fmt.Errorf("%s: tell the head the pool has %d nodes: %w", c.ep.name(), numNodes, err)
	}
	return nil
}

// putHead sends a PUT with a JSON body to the agent's control API.
func putHead(ctx context.Context, c *Client, token, path string, body []byte) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPut, "http://"+agent.ControlAddr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.agentClient().Do(req)
	if err != nil {
		if c.Lost() || errors.Is(err, ErrAgentDown) {
			return err
		}
		// The agent went away mid-request: it is being restarted.
		return fmt.Errorf("%w: %v", ErrAgentDown, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// WaitMember waits until the head's agent, reached over c, lists node
// among its members at addr: the node is part of the cluster when the head
// says so, whatever the node itself reports.
func WaitMember(ctx context.Context, c *Client, node int, addr string) error {
	var last error
	for {
		st, err := AgentStatus(ctx, c)
		if err == nil {
			for _, m := range st.Members {
				if m.Node == node && m.Addr == addr {
					return nil
				}
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
			}
			return fmt.Errorf("%w: the head has not admitted node %d from %s", ctx.Err(), node, addr)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// WaitJoined waits until the node's agent reports that the head accepted
// it.
func WaitJoined(ctx context.Context, c *Client) (*Status, error) {
	var last error
	for {
		st, err := AgentStatus(ctx, c)
		if err == nil && st.Joined {
			return st, nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), last)
			}
			return nil, fmt.Errorf("%w: the head has not accepted the node", ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}
