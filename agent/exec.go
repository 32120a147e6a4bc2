package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Limits of an execution (docs/node-protocol.md).
const (
	// maxExecRequest bounds the body of POST /v1/exec; the shard makes
	// most of it.
	maxExecRequest = 64 << 20
	// maxExecLine is the longest output line reported; the rest of a
	// longer line is dropped.
	maxExecLine = 1 << 20
	// maxExecResult is how much of the result file is read.
	maxExecResult = 16 << 20
	// maxExecID keeps an execution's directory name within what file
	// systems allow.
	maxExecID = 200
)

// Timing of an execution's end; variables so that tests can shorten them.
var (
	// execKillGrace is how long a process group sent SIGTERM has to end
	// before it gets SIGKILL.
	execKillGrace = 2 * time.Second
	// execWriteGrace bounds how long the rest of the answer may take to
	// write once the request has ended: a controller that stopped reading
	// must not hold the handler (and the agent's shutdown) forever. It
	// covers the kill and the drain.
	execWriteGrace = 5 * time.Second
)

var (
	// errExecTimedOut ends an execution that ran longer than its timeout.
	errExecTimedOut = errors.New("timed out")
	// errAgentStopping ends the executions of an agent that shuts down.
	errAgentStopping = errors.New("the agent is shutting down")
	// errRequestEnded replaces context.Canceled, the cause the HTTP
	// server gives when the controller went away, in exit lines and logs.
	errRequestEnded = errors.New("the request ended: the controller cancelled or went away")
)

// Files of an execution's directory, named to the task by the variables
// SKYWARD_RESULT_FILE and SKYWARD_SHARD_FILE.
const (
	execResultFile = "result"
	execShardFile  = "shard.json"
)

// serveExec is POST /v1/exec: it runs one execution of a task and streams
// its lines (docs/node-protocol.md). Once the answer's status is sent, every
// failure is reported in the exit line.
func (d *Daemon) serveExec(w http.ResponseWriter, r *http.Request) {
	if !d.checkToken(w, r, "an execution") {
		return
	}
	req, code, err := readExecRequest(w, r)
	if err == nil {
		code, err = d.beginExec(req.ID)
	}
	if err != nil {
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	defer d.endExec(req.ID)

	start := time.Now()
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	out := newExecWriter(w, cancel)
	defer out.expireWhenDone(ctx)()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)

	exit := d.runExec(ctx, req, out)
	exit.Type = "exit"
	exit.DurationMS = time.Since(start).Milliseconds()
	out.write(exit)

	// Never the environment (it may hold secrets): the error comes from
	// the agent, not from the task.
	var note string
	if exit.Error != "" {
		note = " (" + exit.Error + ")"
	}
	d.logf("execution %q of task %q ended: exit code %d in %d ms%s", req.ID, req.Task, exit.ExitCode, exit.DurationMS, note)
}

// readExecRequest reads and checks the body of POST /v1/exec. On failure it
// returns the HTTP status to answer with.
func readExecRequest(w http.ResponseWriter, r *http.Request) (*ExecRequest, int, error) {
	// Read to the end, which lets the server notice when the controller
	// goes away (it then cancels the request's context).
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxExecRequest))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("execution request larger than %d bytes", tooLarge.Limit)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read execution request: %w", err)
	}
	var req ExecRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("bad execution request: %w", err)
	}
	if err := req.validate(); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("bad execution request: %w", err)
	}
	return &req, http.StatusOK, nil
}

// validate checks what the agent relies on: an id usable as a directory
// name, exactly one of Script and Argv, and an environment that can be
// passed to a process.
func (r *ExecRequest) validate() error {
	switch {
	case r.ID == "" || r.ID == "." || len(r.ID) > maxExecID ||
		strings.Contains(r.ID, "/") || strings.Contains(r.ID, "..") || strings.ContainsRune(r.ID, 0):
		return fmt.Errorf("id %q is not a valid directory name", r.ID)
	case (r.Script != "") == (len(r.Argv) > 0):
		return errors.New("want exactly one of script and argv")
	case len(r.Argv) > 0 && r.Argv[0] == "":
		return errors.New("argv[0] is empty")
	case r.TimeoutMS < 0:
		return fmt.Errorf("negative timeout_ms %d", r.TimeoutMS)
	}
	for k, v := range r.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return fmt.Errorf("environment variable %q: bad name or value", k)
		}
	}
	return nil
}

// hasShard reports whether r carries a shard; a JSON null is none.
func (r *ExecRequest) hasShard() bool {
	return len(r.Shard) > 0 && string(r.Shard) != "null"
}

// timeout is r's time limit; 0 means none.
func (r *ExecRequest) timeout() time.Duration {
	// Clamped: a huge timeout_ms must not overflow into a short one.
	return time.Duration(min(r.TimeoutMS, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
}

// beginExec registers a running execution, which Run waits for. An id
// that is already running is refused: both would share a directory.
func (d *Daemon) beginExec(id string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closing:
		return http.StatusServiceUnavailable, errAgentStopping
	case d.execs[id]:
		return http.StatusConflict, fmt.Errorf("execution %q is already running", id)
	}
	d.execs[id] = true
	// Under mu, before closing is set: never concurrent with the Wait of
	// stopExecutions.
	d.execWG.Add(1)
	return 0, nil
}

func (d *Daemon) endExec(id string) {
	d.mu.Lock()
	delete(d.execs, id)
	d.mu.Unlock()
	d.execWG.Done()
}

// stopExecutions refuses new executions, kills the running ones by
// cancelling their requests' contexts with cancelRequests, and waits for
// their ends.
func (d *Daemon) stopExecutions(cancelRequests context.CancelCauseFunc) {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	cancelRequests(errAgentStopping)
	d.execWG.Wait()
}

// execWriter writes the JSON lines of one answer, each flushed as it is
// written. The stdout and stderr readers use it concurrently.
type execWriter struct {
	rc *http.ResponseController

	mu     sync.Mutex
	w      io.Writer
	err    error                   // the first write error; nothing is written after it
	broken context.CancelCauseFunc // ends the execution: nobody gets its output
}

func newExecWriter(w http.ResponseWriter, broken context.CancelCauseFunc) *execWriter {
	return &execWriter{rc: http.NewResponseController(w), w: w, broken: broken}
}

// write writes l as one line, in a single write, and flushes it.
func (o *execWriter) write(l ExecLine) {
	data, err := json.Marshal(l)
	if err != nil {
		panic(err) // an ExecLine always encodes
	}
	data = append(data, '\n')
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return
	}
	if _, err = o.w.Write(data); err == nil {
		err = o.rc.Flush()
	}
	if err != nil {
		o.err = err
		o.broken(fmt.Errorf("write answer: %w", err))
	}
}

// expireWhenDone gives the rest of the answer execWriteGrace once ctx, the
// request's, is done, until the returned func is called; the handler calls
// it before it returns, since the connection may serve another request
// afterwards.
func (o *execWriter) expireWhenDone(ctx context.Context) (release func()) {
	expired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(expired)
		// Not under mu: a blocked write holds it.
		_ = o.rc.SetWriteDeadline(time.Now().Add(execWriteGrace))
	})
	return func() {
		if !stop() {
			<-expired // it ran, or runs
		}
	}
}

// runExec runs req until it ends, writing its started and output lines to
// out, and returns its exit line but for Type and DurationMS. The
// execution's directory is removed when it returns.
func (d *Daemon) runExec(ctx context.Context, req *ExecRequest, out *execWriter) ExecLine {
	dir := filepath.Join(d.root, "exec", req.ID)
	defer os.RemoveAll(dir)
	cmd, err := d.prepareExec(req, dir)
	if err == nil {
		err = context.Cause(ctx) // for instance the agent is stopping
	}
	if err != nil {
		return ExecLine{ExitCode: 127, Error: describeEnd(err)}
	}
	runCtx := ctx
	if timeout := req.timeout(); timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, timeout, errExecTimedOut)
		defer cancel()
	}
	p, pipes, err := startExec(cmd)
	if err != nil {
		return ExecLine{ExitCode: 127, Error: err.Error()}
	}
	out.write(ExecLine{Type: "started", PID: p.pid})
	d.logf("execution %q of task %q started: pid %d", req.ID, req.Task, p.pid)

	var wg sync.WaitGroup
	for i, stream := range []string{"stdout", "stderr"} {
		wg.Go(func() {
			ReadLines(pipes[i], maxExecLine, func(line string) {
				out.write(ExecLine{Type: "output", Stream: stream, Line: line})
			})
		})
	}
	killed := d.waitExec(runCtx, p)
	// The group is gone; what it wrote is still in the pipes. A process
	// that left the group may hold them open: do not wait for it long.
	for _, f := range pipes {
		_ = f.SetReadDeadline(time.Now().Add(outputGrace))
	}
	wg.Wait()
	closeAll(pipes...)

	var exit ExecLine
	if p.err != nil {
		exit.ExitCode, exit.Error = 1, p.err.Error()
	} else {
		exit.ExitCode = exitCode(p.status)
	}
	switch {
	case errors.Is(killed, errExecTimedOut):
		exit.ExitCode, exit.TimedOut = 124, true
		exit.Error = fmt.Sprintf("timed out after %v", req.timeout())
	case killed != nil:
		exit.Error = "killed: " + describeEnd(killed)
	}
	exit.Result, err = readResult(filepath.Join(dir, execResultFile))
	if err != nil && exit.Error == "" {
		exit.Error = err.Error()
	}
	return exit
}

// describeEnd is the message of the error that ended an execution.
func describeEnd(err error) string {
	if errors.Is(err, context.Canceled) {
		err = errRequestEnded
	}
	return err.Error()
}

// execCommand is an execution ready to start.
type execCommand struct {
	path string // the program, resolved
	argv []string
	dir  string // the work directory
	env  []string
}

// prepareExec creates the work directory and the execution's directory
// dir, with the shard file when req has a shard, and resolves the program.
func (d *Daemon) prepareExec(req *ExecRequest, dir string) (*execCommand, error) {
	work := filepath.Join(d.root, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("create the work directory: %w", err)
	}
	if err := makeExecDir(dir, req); err != nil {
		return nil, fmt.Errorf("create the execution's directory: %w", err)
	}
	vars := d.execVars(req, dir)
	argv := req.Argv
	if req.Script != "" {
		argv = []string{"/bin/sh", "-c", req.Script}
	}
	// The program is looked up here, on the execution's PATH and
	// relative to its directory, not on the agent's.
	name := argv[0]
	if strings.Contains(name, "/") && !filepath.IsAbs(name) {
		name = filepath.Join(work, name)
	}
	path, err := lookPath(name, vars["PATH"])
	if err != nil {
		return nil, err
	}
	return &execCommand{path: path, argv: argv, dir: work, env: envList(vars)}, nil
}

// makeExecDir creates dir afresh, private to the agent's user (what a
// crashed agent left there goes), and writes req's shard in it.
func makeExecDir(dir string, req *ExecRequest) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if req.hasShard() {
		return os.WriteFile(filepath.Join(dir, execShardFile), req.Shard, 0o600)
	}
	return nil
}

// execVars is an execution's environment, each layer overriding the ones
// before: HOME and USER of the agent's user, LANG, PATH; the image's env;
// the request's env (the venv's bin is then put first on PATH, unless it
// is); then SKYWARD_RESULT_FILE and
// SKYWARD_SHARD_FILE, which name files of the execution's directory dir and
// so belong to the agent. Nothing else of the agent's environment is
// passed on.
func (d *Daemon) execVars(req *ExecRequest, dir string) map[string]string {
	home, user := agentUser()
	vars := map[string]string{
		"HOME": home,
		"LANG": cmp.Or(os.Getenv("LANG"), "C.UTF-8"),
		"PATH": filepath.Join(d.root, "venv", "bin") + string(os.PathListSeparator) + cmp.Or(os.Getenv("PATH"), loginPath),
	}
	if user != "" {
		vars["USER"] = user
	}
	maps.Copy(vars, d.cfg.Env)
	maps.Copy(vars, req.Env)
	// The venv stays first on a PATH the image or the task set, as the
	// bootstrap's setup steps see it.
	venv := filepath.Join(d.root, "venv", "bin")
	if p := vars["PATH"]; !strings.HasPrefix(p, venv+string(os.PathListSeparator)) && p != venv {
		vars["PATH"] = venv + string(os.PathListSeparator) + p
	}
	// skyward itself (the collection commands) is on every task's PATH,
	// after what the image and the task put there.
	bin := filepath.Join(d.root, "bin")
	if !slices.Contains(filepath.SplitList(vars["PATH"]), bin) {
		vars["PATH"] += string(os.PathListSeparator) + bin
	}
	vars["SKYWARD_RESULT_FILE"] = filepath.Join(dir, execResultFile)
	delete(vars, "SKYWARD_SHARD_FILE")
	if req.hasShard() {
		vars["SKYWARD_SHARD_FILE"] = filepath.Join(dir, execShardFile)
	}
	return vars
}

// agentUser returns the home directory and name of the user the agent runs
// as: its /etc/passwd entry, which the environment of whoever started the
// agent (sudo, say) may contradict, else the agent's HOME ("/" when unset)
// and USER.
func agentUser() (home, user string) {
	if ents, err := readPasswd(); err == nil {
		euid := uint32(os.Geteuid())
		for _, e := range ents {
			if e.uid == euid {
				return e.home, e.name
			}
		}
	}
	return cmp.Or(os.Getenv("HOME"), "/"), os.Getenv("USER")
}

// startExec starts c through the reaper in a process group of its own,
// with stdin from /dev/null, and returns the read ends of its stdout and
// stderr. When the leader exits, the rest of its group is killed.
func startExec(c *execCommand) (*proc, []*os.File, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", c.argv[0], err)
	}
	defer devnull.Close()
	outR, outW, err1 := os.Pipe()
	errR, errW, err2 := os.Pipe()
	if err := errors.Join(err1, err2); err != nil {
		closeAll(outR, outW, errR, errW)
		return nil, nil, fmt.Errorf("start %s: pipes: %w", c.argv[0], err)
	}
	attr := &syscall.ProcAttr{
		Dir:   c.dir,
		Env:   c.env,
		Files: []uintptr{devnull.Fd(), outW.Fd(), errW.Fd()},
		// As for a bootstrap command: a group of its own, and on Linux
		// SIGKILL should the agent die first.
		Sys: phaseSysProcAttr(),
	}
	p, err := children.start(c.path, c.argv, attr, true)
	closeAll(outW, errW)
	if err != nil {
		closeAll(outR, errR)
		return nil, nil, fmt.Errorf("start %s: %w", c.argv[0], err)
	}
	return p, []*os.File{outR, errR}, nil
}

// waitExec waits for p to end. Should ctx end first, p's process group is
// sent SIGTERM and, execKillGrace later, SIGKILL; waitExec then returns
// ctx's cause once p has ended, and nil when p ended by itself.
func (d *Daemon) waitExec(ctx context.Context, p *proc) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-p.done:
		return nil // it ended by itself meanwhile
	default:
	}
	d.signalExec(p, syscall.SIGTERM)
	grace := time.NewTimer(execKillGrace)
	defer grace.Stop()
	select {
	case <-p.done:
	case <-grace.C:
		d.signalExec(p, syscall.SIGKILL)
		<-p.done
	}
	return context.Cause(ctx)
}

func (d *Daemon) signalExec(p *proc, sig syscall.Signal) {
	if err := children.signalGroup(p, sig); err != nil {
		d.logf("send %v to process group %d: %v", sig, p.pid, err)
	}
}

// exitCode is the exit code of a process that ended with ws; 128 plus the
// signal number for one that a signal killed, as shells report it.
func exitCode(ws syscall.WaitStatus) int {
	var ee *exitError
	if errors.As(waitError(ws, context.Background()), &ee) {
		return ee.code
	}
	return 0
}

// readResult returns the first maxExecResult bytes of the result file at
// path; nil when the task wrote none.
func readResult(path string) (*string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	// A FIFO would block the open, and with it the exit line.
	if !fi.Mode().IsRegular() {
		return nil, errors.New("read result: not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxExecResult))
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	s := string(data)
	return &s, nil
}
