//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// execDaemon is a head daemon whose root is a temporary directory.
type execDaemon struct {
	*Daemon
	logs *syncBuffer
	// stop cancels Run's context and returns what Run returned; it fails
	// the test when Run does not return within 10s.
	stop func() error
}

// startExecDaemon runs a daemon with imageEnv as the image's env until the
// test ends. Environment variables and passwdFile must be set before: the
// daemon reads them as it runs.
func startExecDaemon(t *testing.T, imageEnv map[string]string) *execDaemon {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{Pool: "dev", NumNodes: 1, HeadAddr: "127.0.0.1", ControlAddr: "127.0.0.1:0", Token: testToken, Env: imageEnv}
	d, err := NewDaemon(cfg, func(f string, a ...any) { fmt.Fprintf(logs, f+"\n", a...) })
	if err != nil {
		t.Fatalf("NewDaemon: %v", err)
	}
	d.root = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s of cancellation")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &execDaemon{Daemon: d, logs: logs, stop: stop}
}

var execIDs atomic.Int64

// newExecID returns an id no other execution of the test binary has.
func newExecID() string { return fmt.Sprintf("exec-%d", execIDs.Add(1)) }

// post posts body (marshalled to JSON unless it is a string) to the control
// API's /v1/exec with the Authorization header auth ("" for none).
func (ed *execDaemon) post(t *testing.T, ctx context.Context, auth string, body any) *http.Response {
	t.Helper()
	data, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		data = string(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ed.ControlAddr().String()+"/v1/exec", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/exec: %v", err)
	}
	return resp
}

// execStream is a 200 answer of /v1/exec, read line by line.
type execStream struct {
	resp *http.Response
	r    *bufio.Reader
}

// open starts req with the token, within ctx.
func (ed *execDaemon) open(t *testing.T, ctx context.Context, req any) *execStream {
	t.Helper()
	resp := ed.post(t, ctx, "Bearer "+testToken, req)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /v1/exec: %s: %s", resp.Status, msg)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	return &execStream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next line; false at the end of the answer.
func (s *execStream) next(t *testing.T) (ExecLine, bool) {
	t.Helper()
	data, err := s.r.ReadBytes('\n')
	if err == io.EOF && len(data) == 0 {
		return ExecLine{}, false
	}
	if err != nil {
		t.Fatalf("read answer: %v (after %q)", err, data)
	}
	var l ExecLine
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("answer line %q: %v", data, err)
	}
	return l, true
}

// nextOutput reads up to the next output line and returns its text.
func (s *execStream) nextOutput(t *testing.T) string {
	t.Helper()
	for {
		l, ok := s.next(t)
		switch {
		case !ok:
			t.Fatal("the answer ended before an output line")
		case l.Type == "exit":
			t.Fatalf("exit before an output line: %+v", l)
		case l.Type == "output":
			return l.Line
		}
	}
}

// rest reads the answer's remaining lines.
func (s *execStream) rest(t *testing.T) []ExecLine {
	t.Helper()
	var lines []ExecLine
	for {
		l, ok := s.next(t)
		if !ok {
			return lines
		}
		lines = append(lines, l)
	}
}

// execSummary is a whole answer, checked for its structure: an optional
// started line first, output lines, an exit line last.
type execSummary struct {
	PID            int // 0 without a started line
	Stdout, Stderr []string
	Exit           ExecLine
}

func summarize(t *testing.T, lines []ExecLine) execSummary {
	t.Helper()
	var s execSummary
	for i, l := range lines {
		switch {
		case l.Type == "started" && i == 0 && l.PID > 0:
			s.PID = l.PID
		case l.Type == "output" && l.Stream == "stdout":
			s.Stdout = append(s.Stdout, l.Line)
		case l.Type == "output" && l.Stream == "stderr":
			s.Stderr = append(s.Stderr, l.Line)
		case l.Type == "exit" && i == len(lines)-1:
			s.Exit = l
		default:
			t.Fatalf("unexpected line %d of %d: %+v", i+1, len(lines), l)
		}
	}
	if s.Exit.Type != "exit" {
		t.Fatalf("no exit line in %+v", lines)
	}
	return s
}

// run runs req (with a fresh id when it has none) to its end and checks
// that its directory is gone.
func (ed *execDaemon) run(t *testing.T, req ExecRequest) execSummary {
	t.Helper()
	if req.ID == "" {
		req.ID = newExecID()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := summarize(t, ed.open(t, ctx, req).rest(t))
	if _, err := os.Stat(filepath.Join(ed.root, "exec", req.ID)); !os.IsNotExist(err) {
		t.Errorf("the execution's directory is left: %v", err)
	}
	return s
}

// writeExecutable writes a shell script at path.
func writeExecutable(t *testing.T, path, script string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestExecAuth(t *testing.T) {
	ed := startExecDaemon(t, nil)
	tests := map[string]struct {
		auth string
		want int
	}{
		"no token":         {"", http.StatusUnauthorized},
		"wrong token":      {"Bearer nope", http.StatusUnauthorized},
		"token prefix":     {"Bearer " + testToken[:10], http.StatusUnauthorized},
		"token and more":   {"Bearer " + testToken + "0", http.StatusUnauthorized},
		"not bearer":       {"Basic " + testToken, http.StatusUnauthorized},
		"lowercase bearer": {"bearer " + testToken, http.StatusUnauthorized},
		"token":            {"Bearer " + testToken, http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "ran")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp := ed.post(t, ctx, tc.auth, ExecRequest{ID: newExecID(), Task: "t", Script: "touch " + marker})
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %s; want %d: %s", resp.Status, tc.want, body)
			}
			_, err = os.Stat(marker)
			if ran := err == nil; ran != (tc.want == http.StatusOK) {
				t.Errorf("script ran: %v", ran)
			}
			if tc.want == http.StatusOK {
				return
			}
			var answer map[string]string
			if err := json.Unmarshal(body, &answer); err != nil || answer["error"] == "" {
				t.Errorf("answer %q: want a JSON error (%v)", body, err)
			}
		})
	}
	logs := ed.logs.String()
	if n := strings.Count(logs, "refused an execution from 127.0.0.1: missing or wrong token"); n != 1 {
		t.Errorf("%d refusals logged; want the first only:\n%s", n, logs)
	}
	if strings.Contains(logs, testToken) {
		t.Errorf("log holds the token:\n%s", logs)
	}
}

func TestExecBadRequests(t *testing.T) {
	ed := startExecDaemon(t, nil)
	marker := filepath.Join(t.TempDir(), "ran")
	touch := `"script":"touch ` + marker + `"`
	tests := map[string]struct {
		body string
		want int
	}{
		"not JSON":             {`{`, http.StatusBadRequest},
		"trailing data":        {`{"id":"a",` + touch + `} {}`, http.StatusBadRequest},
		"wrong type":           {`{"id":"a","script":1}`, http.StatusBadRequest},
		"script and argv":      {`{"id":"a",` + touch + `,"argv":["touch","` + marker + `"]}`, http.StatusBadRequest},
		"neither":              {`{"id":"a"}`, http.StatusBadRequest},
		"empty argv":           {`{"id":"a","argv":[]}`, http.StatusBadRequest},
		"empty program":        {`{"id":"a","argv":[""]}`, http.StatusBadRequest},
		"no id":                {`{` + touch + `}`, http.StatusBadRequest},
		"id with a slash":      {`{"id":"a/b",` + touch + `}`, http.StatusBadRequest},
		"id ..":                {`{"id":"..",` + touch + `}`, http.StatusBadRequest},
		"id with ..":           {`{"id":"a..b",` + touch + `}`, http.StatusBadRequest},
		"id .":                 {`{"id":".",` + touch + `}`, http.StatusBadRequest},
		"id with NUL":          {`{"id":"a\u0000b",` + touch + `}`, http.StatusBadRequest},
		"id too long":          {`{"id":"` + strings.Repeat("a", maxExecID+1) + `",` + touch + `}`, http.StatusBadRequest},
		"negative timeout":     {`{"id":"a",` + touch + `,"timeout_ms":-1}`, http.StatusBadRequest},
		"env name with =":      {`{"id":"a",` + touch + `,"env":{"A=B":"x"}}`, http.StatusBadRequest},
		"empty env name":       {`{"id":"a",` + touch + `,"env":{"":"x"}}`, http.StatusBadRequest},
		"env value with NUL":   {`{"id":"a",` + touch + `,"env":{"A":"x\u0000"}}`, http.StatusBadRequest},
		"larger than accepted": {`{"id":"a",` + touch + `,"task":"` + strings.Repeat("x", maxExecRequest) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp := ed.post(t, ctx, "Bearer "+testToken, tc.body)
			defer resp.Body.Close()
			var answer map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer["error"] == "" {
				t.Errorf("answer: want a JSON error (%v)", err)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("status %s; want %d (%q)", resp.Status, tc.want, answer["error"])
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a bad request ran")
	}
	if _, err := os.Stat(filepath.Join(ed.root, "exec")); !os.IsNotExist(err) {
		t.Errorf("a bad request created its directory: %v", err)
	}
}

// TestExecRoutes: executions are on the control API only, POST only.
func TestExecRoutes(t *testing.T) {
	ed := startExecDaemon(t, nil)
	resp, err := http.Get("http://" + ed.ControlAddr().String() + "/v1/exec")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/exec: %s", resp.Status)
	}
	resp, err = http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/exec", clusterPort(ed.Daemon)), "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("exec on the cluster API: %s", resp.Status)
	}
}

func TestExecOutput(t *testing.T) {
	ed := startExecDaemon(t, nil)
	long := strings.Repeat("a", maxExecLine)
	tests := map[string]struct {
		script         string
		stdout, stderr []string
	}{
		"streams": {
			script: "echo out1; echo err1 >&2; echo out2; echo err2 >&2; printf 'no newline'",
			stdout: []string{"out1", "out2", "no newline"},
			stderr: []string{"err1", "err2"},
		},
		"empty lines and CRLF": {
			script: `printf '\n\r\nx\r\ny\rz\n'`,
			stdout: []string{"", "", "x", "y\rz"},
		},
		"long line cut": {
			script: "head -c 1100000 /dev/zero | tr '\\0' a; echo; echo after",
			stdout: []string{long, "after"},
		},
		"nothing": {script: "true"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := ed.run(t, ExecRequest{Task: "t", Script: tc.script})
			if s.PID == 0 {
				t.Error("no started line")
			}
			// Compared by length first: a diff of 1 MiB lines is useless.
			if len(s.Stdout) != len(tc.stdout) || cmp.Diff(tc.stdout, s.Stdout) != "" {
				t.Errorf("stdout: %d lines of %v bytes; want %d of %v", len(s.Stdout), lineLengths(s.Stdout), len(tc.stdout), lineLengths(tc.stdout))
			}
			if diff := cmp.Diff(tc.stderr, s.Stderr); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if s.Exit.ExitCode != 0 || s.Exit.Error != "" || s.Exit.TimedOut {
				t.Errorf("exit %+v", s.Exit)
			}
		})
	}
}

func lineLengths(lines []string) []int {
	var n []int
	for _, l := range lines {
		n = append(n, len(l))
	}
	return n
}

// envOf parses `env` output.
func envOf(lines []string) map[string]string {
	m := map[string]string{}
	for _, l := range lines {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestExecEnvironment checks the layers of an execution's environment and
// where it runs.
func TestExecEnvironment(t *testing.T) {
	t.Setenv("SKYWARD_AGENT_ONLY", "agent")
	t.Setenv("PATH", "/usr/bin:/bin")
	const secret = "request-secret-value"
	ed := startExecDaemon(t, map[string]string{
		"IMAGE_ONLY": "image", "BOTH": "image", "SKYWARD_RESULT_FILE": "/elsewhere",
	})
	id := newExecID()
	s := ed.run(t, ExecRequest{
		ID: id, Task: "env-task", Script: "echo PWD_P=$(pwd -P); env",
		Env: map[string]string{"BOTH": "request", "REQUEST_ONLY": secret, "SKYWARD_SHARD_FILE": "/elsewhere"},
	})
	got := envOf(s.Stdout)
	work, err := filepath.EvalSymlinks(filepath.Join(ed.root, "work"))
	if err != nil {
		t.Fatalf("work directory: %v", err)
	}
	want := map[string]string{
		"PWD_P":               work,
		"PATH":                filepath.Join(ed.root, "venv", "bin") + ":/usr/bin:/bin:" + filepath.Join(ed.root, "bin"),
		"IMAGE_ONLY":          "image",
		"BOTH":                "request",
		"REQUEST_ONLY":        secret,
		"SKYWARD_RESULT_FILE": filepath.Join(ed.root, "exec", id, "result"),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q; want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"SKYWARD_AGENT_ONLY", "SKYWARD_SHARD_FILE"} {
		if v, ok := got[k]; ok {
			t.Errorf("%s=%q is set", k, v)
		}
	}
	for _, k := range []string{"HOME", "USER", "LANG"} {
		if got[k] == "" {
			t.Errorf("%s is not set", k)
		}
	}
	logs := ed.logs.String()
	for _, line := range []string{
		fmt.Sprintf("execution %q of task %q started: pid %d", id, "env-task", s.PID),
		fmt.Sprintf("execution %q of task %q ended: exit code 0 in ", id, "env-task"),
	} {
		if !strings.Contains(logs, line) {
			t.Errorf("log lacks %q:\n%s", line, logs)
		}
	}
	for _, v := range []string{secret, "image", testToken} {
		if strings.Contains(logs, v) {
			t.Errorf("log holds %q:\n%s", v, logs)
		}
	}
}

// TestExecEnvironmentDefaults checks the variables taken from the agent's
// own environment and user.
func TestExecEnvironmentDefaults(t *testing.T) {
	passwd := filepath.Join(t.TempDir(), "passwd")
	entry := fmt.Sprintf("tasker:x:%d:%d:Tasks:/home/tasker:/bin/sh\n", os.Geteuid(), os.Getegid())
	if err := os.WriteFile(passwd, []byte("other:x:12345:12345::/home/other:/bin/sh\n"+entry), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		passwd                string // "" for none
		path, lang, home, usr string // the agent's environment
		want                  map[string]string
	}{
		"from passwd": {
			passwd: passwd, path: "/usr/bin:/bin", lang: "de_DE.UTF-8", home: "/wrong", usr: "wrong",
			want: map[string]string{"HOME": "/home/tasker", "USER": "tasker", "LANG": "de_DE.UTF-8", "PATH": "/usr/bin:/bin"},
		},
		"from the environment": {
			passwd: filepath.Join(t.TempDir(), "missing"), path: "/usr/bin:/bin", home: "/h", usr: "u",
			want: map[string]string{"HOME": "/h", "USER": "u", "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"},
		},
		"nothing set": {
			passwd: filepath.Join(t.TempDir(), "missing"),
			want:   map[string]string{"HOME": "/", "USER": "", "LANG": "C.UTF-8", "PATH": loginPath},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			old := passwdFile
			passwdFile = tc.passwd
			t.Cleanup(func() { passwdFile = old })
			t.Setenv("PATH", tc.path)
			t.Setenv("LANG", tc.lang)
			t.Setenv("HOME", tc.home)
			t.Setenv("USER", tc.usr)
			ed := startExecDaemon(t, nil)
			s := ed.run(t, ExecRequest{Task: "t", Script: "env"})
			got := envOf(s.Stdout)
			want := maps.Clone(tc.want)
			want["PATH"] = filepath.Join(ed.root, "venv", "bin") + ":" + want["PATH"] + ":" + filepath.Join(ed.root, "bin")
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s=%q; want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestExecResult(t *testing.T) {
	ed := startExecDaemon(t, nil)
	str := func(s string) *string { return &s }
	tests := map[string]struct {
		req     any // an ExecRequest, or a JSON string
		want    *string
		wantErr string
	}{
		"written": {
			req:  ExecRequest{Script: `printf '1225\n' > "$SKYWARD_RESULT_FILE"`},
			want: str("1225\n"),
		},
		"none": {req: ExecRequest{Script: "true"}},
		"empty": {
			req:  ExecRequest{Script: `: > "$SKYWARD_RESULT_FILE"`},
			want: str(""),
		},
		"shard": {
			req:  ExecRequest{Script: `cat "$SKYWARD_SHARD_FILE" > "$SKYWARD_RESULT_FILE"`, Shard: json.RawMessage(`[1, 4, {"k": "v"}]`)},
			want: str(`[1,4,{"k":"v"}]`),
		},
		"null shard": {
			req:  `{"id":"null-shard","script":"echo \"${SKYWARD_SHARD_FILE-unset}\" > \"$SKYWARD_RESULT_FILE\"","shard":null}`,
			want: str("unset\n"),
		},
		"too large": {
			req:  ExecRequest{Script: `head -c 17000000 /dev/zero | tr '\0' r > "$SKYWARD_RESULT_FILE"`},
			want: str(strings.Repeat("r", maxExecResult)),
		},
		"not a file": {
			req:     ExecRequest{Script: `mkfifo "$SKYWARD_RESULT_FILE"`},
			wantErr: "read result: not a regular file",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req := tc.req
			if r, ok := req.(ExecRequest); ok {
				r.ID = newExecID()
				req = r
			}
			s := summarize(t, ed.open(t, ctx, req).rest(t))
			switch {
			case tc.want == nil && s.Exit.Result != nil:
				t.Errorf("result %q; want none", *s.Exit.Result)
			case tc.want != nil && s.Exit.Result == nil:
				t.Errorf("no result; want %.20q", *tc.want)
			case tc.want != nil && *s.Exit.Result != *tc.want:
				t.Errorf("result %.20q (%d bytes); want %.20q (%d bytes)", *s.Exit.Result, len(*s.Exit.Result), *tc.want, len(*tc.want))
			}
			if s.Exit.Error != tc.wantErr || s.Exit.ExitCode != 0 {
				t.Errorf("exit code %d, error %q; want 0, %q", s.Exit.ExitCode, s.Exit.Error, tc.wantErr)
			}
		})
	}
	entries, err := os.ReadDir(filepath.Join(ed.root, "exec"))
	if err != nil || len(entries) != 0 {
		t.Errorf("executions' directories left: %v (%v)", entries, err)
	}
}

func TestExecExitCodes(t *testing.T) {
	ed := startExecDaemon(t, nil)
	writeExecutable(t, filepath.Join(ed.root, "venv", "bin", "venv-tool"), "echo venv tool")
	writeExecutable(t, filepath.Join(ed.root, "work", "bin", "work-tool"), `echo "work tool $1"`)
	tests := map[string]struct {
		req     ExecRequest
		want    int
		stdout  []string
		started bool
		errText string // in the exit line's error
	}{
		"success":          {req: ExecRequest{Script: "exit 0"}, want: 0, started: true},
		"exit code":        {req: ExecRequest{Script: "exit 3"}, want: 3, started: true},
		"SIGKILL":          {req: ExecRequest{Script: "kill -9 $$"}, want: 137, started: true},
		"SIGTERM":          {req: ExecRequest{Script: "kill -TERM $$"}, want: 143, started: true},
		"argv":             {req: ExecRequest{Argv: []string{"sh", "-c", "echo $0 $1; exit 5", "a b", "c"}}, want: 5, stdout: []string{"a b c"}, started: true},
		"argv in the venv": {req: ExecRequest{Argv: []string{"venv-tool"}}, stdout: []string{"venv tool"}, started: true},
		"argv relative":    {req: ExecRequest{Argv: []string{"bin/work-tool", "x"}}, stdout: []string{"work tool x"}, started: true},
		"argv absolute":    {req: ExecRequest{Argv: []string{"/bin/echo", "abs"}}, stdout: []string{"abs"}, started: true},
		"argv not found":   {req: ExecRequest{Argv: []string{"skyward-no-such-command"}}, want: 127, errText: "skyward-no-such-command: command not found"},
		"not executable":   {req: ExecRequest{Argv: []string{"/etc/passwd"}}, want: 127, errText: "not an executable file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.req.Task = "codes"
			s := ed.run(t, tc.req)
			if s.Exit.ExitCode != tc.want {
				t.Errorf("exit code %d; want %d (%+v)", s.Exit.ExitCode, tc.want, s.Exit)
			}
			if diff := cmp.Diff(tc.stdout, s.Stdout); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if (s.PID != 0) != tc.started {
				t.Errorf("started line: %v; want %v", s.PID != 0, tc.started)
			}
			if !strings.Contains(s.Exit.Error, tc.errText) || (tc.errText == "") != (s.Exit.Error == "") {
				t.Errorf("error %q; want %q", s.Exit.Error, tc.errText)
			}
			if s.Exit.TimedOut {
				t.Error("timed out")
			}
		})
	}
}

// TestExecKills: a timeout, the controller going away and the agent's
// shutdown each kill the whole process group, background children
// included, SIGKILL following SIGTERM when that is ignored.
func TestExecKills(t *testing.T) {
	setDuration(t, &execKillGrace, 300*time.Millisecond)
	const (
		bg       = "sleep 300 & echo $!; wait"
		ignoring = "trap '' TERM; sleep 300 & echo $!; wait" // sleep inherits the ignored TERM
	)
	tests := map[string]struct {
		script  string
		timeout int64
		// end ends the execution once it runs; nil waits for the timeout.
		end      func(t *testing.T, ed *execDaemon, cancelRequest func())
		code     int
		timedOut bool
		errText  string
		answered bool // the exit line reaches the controller
	}{
		"timeout": {
			script: bg, timeout: 500, code: 124, timedOut: true, errText: "timed out after 500ms", answered: true,
		},
		"timeout ignoring SIGTERM": {
			script: ignoring, timeout: 500, code: 124, timedOut: true, errText: "timed out after 500ms", answered: true,
		},
		"controller gone": {
			script: bg, errText: "killed: " + errRequestEnded.Error(),
			end: func(_ *testing.T, _ *execDaemon, cancelRequest func()) { cancelRequest() },
		},
		"controller gone, SIGTERM ignored": {
			script: ignoring, errText: "killed: " + errRequestEnded.Error(),
			end: func(_ *testing.T, _ *execDaemon, cancelRequest func()) { cancelRequest() },
		},
		"agent shutdown": {
			script: bg, code: 143, errText: "killed: the agent is shutting down", answered: true,
			end: func(t *testing.T, ed *execDaemon, _ func()) {
				if err := ed.stop(); err != nil {
					t.Errorf("Run: %v", err)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ed := startExecDaemon(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id := newExecID()
			st := ed.open(t, ctx, ExecRequest{ID: id, Task: "kill", Script: tc.script, TimeoutMS: tc.timeout})
			first, _ := st.next(t)
			if first.Type != "started" {
				t.Fatalf("first line %+v", first)
			}
			child, err := strconv.Atoi(st.nextOutput(t))
			if err != nil {
				t.Fatal(err)
			}
			if tc.end != nil {
				tc.end(t, ed, cancel)
			}
			if tc.answered {
				exit := summarize(t, st.rest(t)).Exit
				if exit.ExitCode != tc.code || exit.TimedOut != tc.timedOut || exit.Error != tc.errText {
					t.Errorf("exit %+v; want code %d, timed out %v, error %q", exit, tc.code, tc.timedOut, tc.errText)
				}
			}
			// Ended by the agent: the execution is logged as ended
			// once its directory is removed and its group killed.
			ended := fmt.Sprintf("execution %q of task \"kill\" ended", id)
			waitFor(t, "the end of the execution", func() bool { return strings.Contains(ed.logs.String(), ended) })
			if logs := ed.logs.String(); !strings.Contains(logs, tc.errText+")") {
				t.Errorf("log lacks %q:\n%s", tc.errText, logs)
			}
			if st, _ := procState(first.PID); st != "" {
				t.Errorf("the group's leader is still there (state %q)", st)
			}
			waitGone(t, child)
			if _, err := os.Stat(filepath.Join(ed.root, "exec", id)); !os.IsNotExist(err) {
				t.Errorf("the execution's directory is left: %v", err)
			}
		})
	}
}

// setDuration sets *v to d until the test ends. Daemons read it as they
// run: set it before starting them.
func setDuration(t *testing.T, v *time.Duration, d time.Duration) {
	t.Helper()
	old := *v
	*v = d
	t.Cleanup(func() { *v = old })
}

// TestExecStalledController: an agent shuts down in bounded time although
// the controller stopped reading an execution's answer.
func TestExecStalledController(t *testing.T) {
	setDuration(t, &execWriteGrace, 200*time.Millisecond)
	ed := startExecDaemon(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := ed.open(t, ctx, ExecRequest{ID: newExecID(), Task: "t", Script: "exec yes"})
	started, _ := st.next(t)
	// yes fills the pipe once the agent's write to the connection blocks.
	waitFor(t, "output to block", func() bool {
		state, _ := procState(started.PID)
		return state == "S"
	})
	if err := ed.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if state, _ := procState(started.PID); state != "" {
		t.Errorf("the execution still runs (state %q)", state)
	}
}

// TestExecEscapedChild: a process that left the group and holds the
// output pipes delays the exit line by outputGrace only.
func TestExecEscapedChild(t *testing.T) {
	setDuration(t, &outputGrace, 200*time.Millisecond)
	ed := startExecDaemon(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The leader exits (and its group is killed) only once the child is
	// in a session of its own.
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := fmt.Sprintf(`setsid sh -c 'echo $$ > %[1]s; exec sleep 300' & while [ ! -s %[1]s ]; do sleep 0.01; done; cat %[1]s`, pidFile)
	st := ed.open(t, ctx, ExecRequest{ID: newExecID(), Task: "t", Script: script})
	st.next(t) // started
	escaped, err := strconv.Atoi(st.nextOutput(t))
	if err != nil {
		t.Fatal(err)
	}
	// Not in the group: nothing else kills it.
	t.Cleanup(func() { _ = syscall.Kill(escaped, syscall.SIGKILL) })
	if exit := summarize(t, st.rest(t)).Exit; exit.ExitCode != 0 || exit.Error != "" {
		t.Errorf("exit %+v", exit)
	}
	if state, _ := procState(escaped); state == "" || state == "Z" {
		t.Errorf("the escaped child is gone (state %q): the test proves nothing", state)
	}
}

// TestExecStreaming: a line reaches the controller while the execution
// still runs, which waits for the test to have read it.
func TestExecStreaming(t *testing.T) {
	ed := startExecDaemon(t, nil)
	for _, stream := range []string{"stdout", "stderr"} {
		t.Run(stream, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "read")
			redirect := map[string]string{"stdout": "", "stderr": " >&2"}[stream]
			script := fmt.Sprintf("echo first%s; while [ ! -e %s ]; do sleep 0.01; done; echo second%s", redirect, marker, redirect)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st := ed.open(t, ctx, ExecRequest{ID: newExecID(), Task: "t", Script: script})
			var lines []ExecLine
			for len(lines) < 2 {
				l, ok := st.next(t)
				if !ok {
					t.Fatal("the answer ended before the first output line")
				}
				lines = append(lines, l)
			}
			if err := os.WriteFile(marker, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			s := summarize(t, append(lines, st.rest(t)...))
			want := execSummary{PID: s.PID, Exit: ExecLine{Type: "exit", DurationMS: s.Exit.DurationMS}}
			if stream == "stdout" {
				want.Stdout = []string{"first", "second"}
			} else {
				want.Stderr = []string{"first", "second"}
			}
			if diff := cmp.Diff(want, s); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExecConflict: an id runs once at a time; it is free again after.
func TestExecConflict(t *testing.T) {
	ed := startExecDaemon(t, nil)
	marker := filepath.Join(t.TempDir(), "done")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := ExecRequest{ID: "dup", Task: "t", Script: fmt.Sprintf("echo ready; while [ ! -e %s ]; do sleep 0.01; done", marker)}
	st := ed.open(t, ctx, req)
	st.nextOutput(t)
	resp := ed.post(t, ctx, "Bearer "+testToken, req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("same id while running: %s; want 409", resp.Status)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if exit := summarize(t, st.rest(t)).Exit; exit.ExitCode != 0 {
		t.Errorf("first execution: %+v", exit)
	}
	if s := ed.run(t, req); s.Exit.ExitCode != 0 || len(s.Stdout) != 1 {
		t.Errorf("same id afterwards: %+v", s)
	}
}

func TestReadLines(t *testing.T) {
	const limit = 20
	long := strings.Repeat("x", 100)
	tests := map[string]struct {
		in   string
		want []string
	}{
		"lines":                  {"ab\ncd\n", []string{"ab", "cd"}},
		"no final newline":       {"ab\ncd", []string{"ab", "cd"}},
		"CRLF":                   {"ab\r\ncd\r\n", []string{"ab", "cd"}},
		"CR inside":              {"a\rb\n", []string{"a\rb"}},
		"empty lines":            {"\n\n", []string{"", ""}},
		"nothing":                {"", nil},
		"at the limit":           {long[:limit] + "\nend\n", []string{long[:limit], "end"}},
		"cut":                    {long + "\nend\n", []string{long[:limit], "end"}},
		"cut without newline":    {long, []string{long[:limit]}},
		"cut before the CR":      {long[:limit] + "\r\n", []string{long[:limit]}},
		"CR beyond the cut":      {long + "\r\nend\n", []string{long[:limit], "end"}},
		"several buffers of one": {long + long + "\n", []string{long[:limit]}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			ReadLines(strings.NewReader(tc.in), limit, func(l string) { got = append(got, l) })
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadLinesFailure: what was read before an error is reported.
func TestReadLinesFailure(t *testing.T) {
	var got []string
	r := io.MultiReader(strings.NewReader("a\nb"), errReader{errors.New("boom")})
	ReadLines(r, 10, func(l string) { got = append(got, l) })
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
