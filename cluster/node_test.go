package cluster

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/fileset"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/skyward-sh/skyward/agent"
)

// excludes compiles exclude patterns as the executor does.
func excludes(t *testing.T, patterns ...string) fileset.Matcher {
	t.Helper()
	e, err := hclspec.NewExcludes(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// defaultExcludes mirrors planner.DefaultExcludes.
var defaultExcludes = []string{".git", "__pycache__", "*.pyc", ".venv", "node_modules"}

// tarEntry is one entry of a bootstrap tar stream after recipe.json.
type tarEntry struct {
	Name     string
	Type     byte
	Mode     int64
	Linkname string
	Body     string
	// The owner is always left zero: local users mean nothing on a node.
	Uid, Gid     int
	Uname, Gname string
}

func dirEntry(name string) tarEntry { return tarEntry{Name: name, Type: tar.TypeDir, Mode: 0o755} }

func fileEntry(name string, mode int64, body string) tarEntry {
	return tarEntry{Name: name, Type: tar.TypeReg, Mode: mode, Body: body}
}

// readBootstrapTar reads a bootstrap tar stream to its end, as the agent
// does: recipe.json first, then the other entries.
func readBootstrapTar(r io.Reader) (agent.Recipe, []tarEntry, error) {
	var recipe agent.Recipe
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return recipe, nil, fmt.Errorf("read recipe: %w", err)
	}
	if hdr.Name != "recipe.json" {
		return recipe, nil, fmt.Errorf("the stream starts with %q, not recipe.json", hdr.Name)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return recipe, nil, fmt.Errorf("read recipe: %w", err)
	}
	if err := json.Unmarshal(data, &recipe); err != nil {
		return recipe, nil, fmt.Errorf("read recipe: %w", err)
	}
	var entries []tarEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return recipe, entries, nil
		}
		if err != nil {
			return recipe, nil, fmt.Errorf("read stream: %w", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return recipe, nil, fmt.Errorf("read %s: %w", hdr.Name, err)
		}
		entries = append(entries, tarEntry{
			Name: hdr.Name, Type: hdr.Typeflag, Mode: hdr.Mode, Linkname: hdr.Linkname, Body: string(body),
			Uid: hdr.Uid, Gid: hdr.Gid, Uname: hdr.Uname, Gname: hdr.Gname,
		})
	}
}

// writeTree creates files (slash-separated name: content) under root, files
// with mode 0644 and directories 0755 whatever the umask.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bootstrapProject makes a project directory with includes to leave out,
// an executable file, a symlink, a wheel and a pip package directory, and
// returns its path.
func bootstrapProject(t *testing.T) string {
	t.Helper()
	proj := filepath.Join(t.TempDir(), "project")
	writeTree(t, proj, map[string]string{
		"src/a.py":                          "print('a')\n",
		"src/c.pyc":                         "compiled",
		"src/sub/b.txt":                     "b\n",
		"src/sub/__pycache__/y.pyc":         "compiled",
		"src/.git/config":                   "[core]\n",
		"src/__pycache__/x.pyc":             "compiled",
		"src/.venv/pyvenv.cfg":              "home = /usr/bin\n",
		"src/node_modules/m.js":             "module.exports = 1\n",
		"wheels/mylib-0.1-py3-none-any.whl": "wheel",
		"pkgdir/setup.py":                   "setup()\n",
	})
	if err := os.Chmod(filepath.Join(proj, "src/a.py"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.py", filepath.Join(proj, "src/link")); err != nil {
		t.Fatal(err)
	}
	return proj
}

func TestWriteBootstrapTar(t *testing.T) {
	proj := bootstrapProject(t)
	if err := os.Symlink(filepath.Join(proj, "src/sub"), filepath.Join(proj, "linked")); err != nil {
		t.Fatal(err)
	}
	link, err := os.Lstat(filepath.Join(proj, "src/link"))
	if err != nil {
		t.Fatal(err)
	}
	recipe := func(dir string, includes []string, pip ...string) Recipe {
		return Recipe{
			Env:      map[string]string{"MY_VAR": "it works"},
			Apt:      []string{"bc"},
			Pip:      append(pip, "requests==2.32.3"),
			LocalPip: pip,
			Setup:    []string{"echo ready > /tmp/ready"},
			Includes: includes,
			Exclude:  excludes(t, defaultExcludes...),
			Dir:      dir,
		}
	}
	wantRecipe := func(includes bool, pip ...string) agent.Recipe {
		return agent.Recipe{
			Env:      map[string]string{"MY_VAR": "it works"},
			Apt:      []string{"bc"},
			Pip:      append(pip, "requests==2.32.3"),
			Setup:    []string{"echo ready > /tmp/ready"},
			Includes: includes,
		}
	}
	fullRecipe := wantRecipe(true, wheelsDir+"/mylib-0.1-py3-none-any.whl", wheelsDir+"/pkgdir")
	fullEntries := []tarEntry{
		dirEntry("includes/src"),
		fileEntry("includes/src/a.py", 0o755, "print('a')\n"),
		{Name: "includes/src/link", Type: tar.TypeSymlink, Mode: int64(link.Mode().Perm()), Linkname: "a.py"},
		dirEntry("includes/src/sub"),
		fileEntry("includes/src/sub/b.txt", 0o644, "b\n"),
		fileEntry("wheels/mylib-0.1-py3-none-any.whl", 0o644, "wheel"),
		dirEntry("wheels/pkgdir"),
		fileEntry("wheels/pkgdir/setup.py", 0o644, "setup()\n"),
	}
	tests := map[string]struct {
		recipe      Recipe
		wantRecipe  agent.Recipe
		wantEntries []tarEntry
	}{
		"paths relative to Dir": {
			recipe:      recipe(proj, []string{"src"}, "wheels/mylib-0.1-py3-none-any.whl", "./pkgdir"),
			wantRecipe:  fullRecipe,
			wantEntries: fullEntries,
		},
		"paths leaving Dir": {
			recipe:      recipe(filepath.Join(proj, "deploy"), []string{"../src"}, "../wheels/mylib-0.1-py3-none-any.whl", "../pkgdir/"),
			wantRecipe:  fullRecipe,
			wantEntries: fullEntries,
		},
		"absolute paths ignore Dir": {
			recipe: recipe("/nonexistent", []string{filepath.Join(proj, "src")},
				filepath.Join(proj, "wheels/mylib-0.1-py3-none-any.whl"), filepath.Join(proj, "pkgdir")),
			wantRecipe:  fullRecipe,
			wantEntries: fullEntries,
		},
		"a file include": {
			recipe:      recipe(proj, []string{"src/sub/b.txt"}),
			wantRecipe:  wantRecipe(true),
			wantEntries: []tarEntry{fileEntry("includes/b.txt", 0o644, "b\n")},
		},
		"an include named like an exclude": {
			recipe:      recipe(proj, []string{"src/node_modules"}),
			wantRecipe:  wantRecipe(true),
			wantEntries: []tarEntry{dirEntry("includes/node_modules"), fileEntry("includes/node_modules/m.js", 0o644, "module.exports = 1\n")},
		},
		"an include that is a symlink is followed": {
			recipe:      recipe(proj, []string{"linked"}),
			wantRecipe:  wantRecipe(true),
			wantEntries: []tarEntry{dirEntry("includes/linked"), fileEntry("includes/linked/b.txt", 0o644, "b\n")},
		},
		"no includes": {
			recipe:     recipe(proj, nil),
			wantRecipe: wantRecipe(false),
		},
		"excludes are .gitignore patterns relative to the include": {
			recipe: func() Recipe {
				r := recipe(proj, []string{"src"})
				r.Pip, r.Exclude = nil, excludes(t, append([]string{"sub/b.txt", "/link"}, defaultExcludes...)...)
				return r
			}(),
			wantRecipe:  agent.Recipe{Env: map[string]string{"MY_VAR": "it works"}, Apt: []string{"bc"}, Pip: []string{}, Setup: []string{"echo ready > /tmp/ready"}, Includes: true},
			wantEntries: []tarEntry{dirEntry("includes/src"), fileEntry("includes/src/a.py", 0o755, "print('a')\n"), dirEntry("includes/src/sub")},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeBootstrapTar(&buf, tc.recipe); err != nil {
				t.Fatalf("writeBootstrapTar: %v", err)
			}
			gotRecipe, gotEntries, err := readBootstrapTar(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantRecipe, gotRecipe); diff != "" {
				t.Errorf("recipe.json (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantEntries, gotEntries); diff != "" {
				t.Errorf("entries after recipe.json (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRecipeFilesErrors checks the local paths a recipe names before
// anything is sent: missing ones, and two that would land in the same
// place on the node.
func TestRecipeFilesErrors(t *testing.T) {
	proj := bootstrapProject(t)
	writeTree(t, filepath.Join(proj, "other"), map[string]string{"src/z.py": "", "pkgdir/setup.py": ""})
	tests := map[string]struct {
		recipe   Recipe
		wantErr  string // the error's start; a missing path's cause names it again
		notExist bool
	}{
		"missing include": {
			recipe:   Recipe{Includes: []string{"src", "missing"}, Dir: proj},
			wantErr:  "includes missing: lstat " + filepath.Join(proj, "missing") + ": ",
			notExist: true,
		},
		"missing local pip file": {
			recipe:   Recipe{Pip: []string{"./missing.whl"}, LocalPip: []string{"./missing.whl"}, Dir: proj},
			wantErr:  "pip ./missing.whl: lstat " + filepath.Join(proj, "missing.whl") + ": ",
			notExist: true,
		},
		"includes with one name": {
			recipe:  Recipe{Includes: []string{"src", "other/src"}, Dir: proj},
			wantErr: `includes src and other/src have the same name "src"`,
		},
		"local pip items with one name": {
			recipe:  Recipe{Pip: []string{"./pkgdir", "./other/pkgdir"}, LocalPip: []string{"./pkgdir", "./other/pkgdir"}, Dir: proj},
			wantErr: `pip ./pkgdir and ./other/pkgdir have the same name "pkgdir"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := writeBootstrapTar(io.Discard, tc.recipe)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) || errors.Is(err, fs.ErrNotExist) != tc.notExist {
				t.Errorf("err = %v; want %q... (not found: %v)", err, tc.wantErr, tc.notExist)
			}
		})
	}
}

func TestPhaseErrorError(t *testing.T) {
	tests := map[string]struct {
		tail []string
		want string
	}{
		"with output": {
			tail: []string{"E: Unable to locate package nosuch", "E: exiting"},
			want: "pool.dev.node[1]: bootstrap: apt: exit status 100\n  E: Unable to locate package nosuch\n  E: exiting",
		},
		"without output": {
			want: "pool.dev.node[1]: bootstrap: apt: exit status 100",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := &PhaseError{Address: "pool.dev.node[1]", Phase: "apt", ExitCode: 100, Tail: tc.tail}
			if got := err.Error(); got != tc.want {
				t.Errorf("Error() = %q; want %q", got, tc.want)
			}
		})
	}
}

// sh runs script with /bin/sh -c and returns its standard output.
func sh(t *testing.T, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", script, err)
	}
	return string(out)
}

func TestSudo(t *testing.T) {
	// Stands in for sudo: drops -n and runs the rest as is.
	const fakeSudo = `sudo() { shift; "$@"; }; `
	commands := map[string]struct{ cmd, want string }{
		"single quotes":        {`printf '%s|' 'it'\''s' "a'b"`, "it's|a'b|"},
		"variables":            {`printf '%s|' "$SKYWARD_TEST" $SKYWARD_TEST`, "two  words|two|words|"},
		"spaces and operators": {`echo a   b; echo "c  d" && echo $(echo sub) | tr a-z A-Z`, "a b\nc  d\nSUB\n"},
	}
	users := map[string]bool{"": false, "root": false, "deploy": true} // user: through sudo
	for user, viaSudo := range users {
		c := &Client{ep: Endpoint{User: user}}
		for name, tc := range commands {
			t.Run(fmt.Sprintf("user %q/%s", user, name), func(t *testing.T) {
				got := c.Sudo(tc.cmd)
				if viaSudo && !strings.HasPrefix(got, "sudo -n ") || !viaSudo && got != tc.cmd {
					t.Fatalf("Sudo(%q) = %q; want the command as is for root, through sudo -n for others", tc.cmd, got)
				}
				if out := sh(t, fakeSudo+got, "SKYWARD_TEST=two  words"); out != tc.want {
					t.Errorf("sh -c %q printed %q; want %q", fakeSudo+got, out, tc.want)
				}
			})
		}
	}
}

func TestShellQuote(t *testing.T) {
	for _, s := range []string{
		"",
		"plain",
		"two  words",
		"it's",
		"'",
		"''quoted''",
		`$HOME ${HOME} $(id) ` + "`id`",
		`"double" \back\slash \'`,
		"new\nline\ttab",
		"glob * ? [a] ~ {a,b}",
		"semi; rm -rf x & | > < #",
		"-n ünïcødé",
	} {
		if got := sh(t, "printf %s "+shellQuote(s)); got != s {
			t.Errorf("the shell reads shellQuote(%q) = %s as %q", s, shellQuote(s), got)
		}
	}
}

// execFunc stands in for a command run on a fake node; it returns the exit
// code.
type execFunc func(cmd string, stdin io.Reader, stdout, stderr io.Writer) int

// fakeNode serves SSH on loopback, answering each exec request with run
// instead of running a command, and returns a Client that reaches it as
// user.
func fakeNode(t *testing.T, user string, run execFunc) *Client {
	t.Helper()
	privPEM, authorized, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	conf := &ssh.ServerConfig{NoClientAuth: true}
	conf.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveExec(nc, conf, run)
		}
	}()
	ep := Endpoint{
		Address: "pool.dev.node[1]",
		Host:    "127.0.0.1",
		Port:    ln.Addr().(*net.TCPAddr).Port,
		User:    user,
		HostKey: authorized,
		Signer:  signer,
	}
	c, err := Dial(t.Context(), ep)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serveExec serves one SSH connection for fakeNode.
func serveExec(nc net.Conn, conf *ssh.ServerConfig, run execFunc) {
	sc, chans, reqs, err := ssh.NewServerConn(nc, conf)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range chReqs {
				var execReq struct{ Command string }
				if req.Type != "exec" || ssh.Unmarshal(req.Payload, &execReq) != nil {
					_ = req.Reply(false, nil)
					continue
				}
				_ = req.Reply(true, nil)
				go func() {
					code := run(execReq.Command, ch, ch, ch.Stderr())
					_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
					ch.Close()
				}()
			}
		}()
	}
}

// received is what a fakeAgent read.
type received struct {
	cmd     string
	recipe  agent.Recipe
	entries []string
}

// fakeAgent returns an execFunc standing in for `skyward agent bootstrap`:
// it reads the tar stream to its end as the agent does (a bad stream exits
// 1 with the error on stderr), reports what it read on got unless got is
// nil, then writes stdout and stderr and exits with code.
func fakeAgent(stdout []string, stderr string, code int, got chan<- received) execFunc {
	return func(cmd string, stdin io.Reader, outW, errW io.Writer) int {
		recipe, entries, err := readBootstrapTar(stdin)
		if err != nil {
			fmt.Fprintf(errW, "skyward agent bootstrap: %v\n", err)
			return 1
		}
		if got != nil {
			r := received{cmd: cmd, recipe: recipe}
			for _, e := range entries {
				r.entries = append(r.entries, e.Name)
			}
			got <- r
		}
		for _, l := range stdout {
			fmt.Fprintln(outW, l)
		}
		fmt.Fprint(errW, stderr)
		return code
	}
}

// jsonLines encodes phase lines as the agent writes them.
func jsonLines(t *testing.T, lines ...agent.PhaseLine) []string {
	t.Helper()
	out := make([]string, len(lines))
	for i, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

// numbered returns "line <from>" to "line <to>".
func numbered(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

func TestBootstrapEvents(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"src/a.py": "print('a')\n"})
	r := Recipe{Env: map[string]string{"MY_VAR": "it works"}, Pip: []string{"requests==2.32.3"}, Includes: []string{"src"}, Dir: dir}
	stdout := append(jsonLines(t,
		agent.PhaseLine{Type: "phase", Phase: "env", Status: "started"},
		agent.PhaseLine{Type: "phase", Phase: "env", Status: "completed", DurationMS: 3},
		agent.PhaseLine{Type: "phase", Phase: "apt", Status: "skipped"},
		agent.PhaseLine{Type: "phase", Phase: "pip", Status: "started"},
		agent.PhaseLine{Type: "output", Phase: "pip", Stream: "stdout", Line: "Collecting requests"},
		agent.PhaseLine{Type: "output", Phase: "pip", Stream: "stderr", Line: "WARNING: be careful"},
		agent.PhaseLine{Type: "phase", Phase: "pip", Status: "completed", DurationMS: 5120},
	), "not JSON: said by something else")
	wantEvents := []PhaseEvent{
		{Phase: "env", Status: "started"},
		{Phase: "env", Status: "completed", Duration: 3 * time.Millisecond},
		{Phase: "apt", Status: "skipped"},
		{Phase: "pip", Status: "started"},
		{Phase: "pip", Stream: "stdout", Line: "Collecting requests"},
		{Phase: "pip", Stream: "stderr", Line: "WARNING: be careful"},
		{Phase: "pip", Status: "completed", Duration: 5120 * time.Millisecond},
		{Stream: "stdout", Line: "not JSON: said by something else"},
	}
	tests := map[string]struct {
		user    string
		wantCmd string
	}{
		"as root":      {"root", agentPath + " agent bootstrap"},
		"through sudo": {"deploy", "sudo -n sh -c '" + agentPath + " agent bootstrap'"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := make(chan received, 1)
			c := fakeNode(t, tc.user, fakeAgent(stdout, "", 0, got))
			var events []PhaseEvent
			if err := Bootstrap(t.Context(), c, r, func(ev PhaseEvent) { events = append(events, ev) }); err != nil {
				t.Fatalf("Bootstrap: %v", err)
			}
			want := received{
				cmd:     tc.wantCmd,
				recipe:  agent.Recipe{Env: r.Env, Pip: r.Pip, Includes: true},
				entries: []string{"includes/src", "includes/src/a.py"},
			}
			if diff := cmp.Diff(want, <-got, cmp.AllowUnexported(received{})); diff != "" {
				t.Errorf("the node got (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantEvents, events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// With an agent configuration, the bootstrap starts the agent: the
// configuration follows the recipe, the command says -start, and the
// agent's line reports the start instead of a phase.
func TestBootstrapStartsAgent(t *testing.T) {
	r := Recipe{Setup: []string{"true"}}
	cfg := []byte(`{"pool":"dev","node":1,"token":"secret"}`)
	stdout := jsonLines(t,
		agent.PhaseLine{Type: "phase", Phase: "setup", Status: "completed", DurationMS: 1},
		agent.PhaseLine{Type: "agent", Status: "starting"},
	)
	var got []string
	exec := func(cmd string, stdin io.Reader, outW, errW io.Writer) int {
		tr := tar.NewReader(stdin)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			body, _ := io.ReadAll(tr)
			got = append(got, h.Name+"="+string(body))
		}
		got = append([]string{cmd}, got...)
		for _, l := range stdout {
			fmt.Fprintln(outW, l)
		}
		return 0
	}
	c := fakeNode(t, "deploy", exec)
	var events []PhaseEvent
	starts := 0
	if err := bootstrap(t.Context(), c, r, cfg, func(ev PhaseEvent) { events = append(events, ev) }, func() { starts++ }); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	want := []string{"sudo -n sh -c '" + agentPath + " agent bootstrap -start'",
		`recipe.json={"env":null,"apt":null,"pip":[],"setup":["true"],"includes":false}`,
		"agent.json=" + string(cfg)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the node got (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]PhaseEvent{{Phase: "setup", Status: "completed", Duration: time.Millisecond}}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if starts != 1 {
		t.Errorf("starting called %d times, want once", starts)
	}
}

func TestBootstrapErrors(t *testing.T) {
	// One line more than a PhaseError keeps.
	aptOutput := make([]agent.PhaseLine, 0, tailLines+1)
	for _, l := range numbered(1, tailLines+1) {
		aptOutput = append(aptOutput, agent.PhaseLine{Type: "output", Phase: "apt", Stream: "stderr", Line: l})
	}
	failedApt := append(jsonLines(t,
		agent.PhaseLine{Type: "phase", Phase: "env", Status: "started"},
		agent.PhaseLine{Type: "output", Phase: "env", Stream: "stdout", Line: "env output"},
		agent.PhaseLine{Type: "phase", Phase: "env", Status: "completed", DurationMS: 1},
		agent.PhaseLine{Type: "phase", Phase: "apt", Status: "started"},
	), jsonLines(t, aptOutput...)...)
	failedApt = append(failedApt, jsonLines(t,
		agent.PhaseLine{Type: "phase", Phase: "apt", Status: "failed", ExitCode: 100, Error: "exit status 100"})...)
	tests := map[string]struct {
		stdout       []string
		stderr       string
		code         int
		wantErr      string
		wantPhaseErr *PhaseError
	}{
		"failed phase": {
			stdout: failedApt,
			stderr: "skyward agent bootstrap: apt: exit status 100\n",
			code:   1,
			wantErr: "pool.dev.node[1]: bootstrap: apt: exit status 100\n  " +
				strings.Join(numbered(2, tailLines+1), "\n  "),
			wantPhaseErr: &PhaseError{Address: "pool.dev.node[1]", Phase: "apt", ExitCode: 100, Reason: "exit status 100", Tail: numbered(2, tailLines+1)},
		},
		"exit without a failed phase": {
			stderr:  "\nsudo: a terminal is required to read the password\nsudo: a password is required\n\n",
			code:    1,
			wantErr: "pool.dev.node[1]: bootstrap: exit status 1: sudo: a terminal is required to read the password\nsudo: a password is required",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := fakeNode(t, "deploy", fakeAgent(tc.stdout, tc.stderr, tc.code, nil))
			err := Bootstrap(t.Context(), c, Recipe{Apt: []string{"nosuch"}}, nil)
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("err = %v; want %s", err, tc.wantErr)
			}
			var phaseErr *PhaseError
			errors.As(err, &phaseErr)
			if diff := cmp.Diff(tc.wantPhaseErr, phaseErr); diff != "" {
				t.Errorf("PhaseError (-want +got):\n%s", diff)
			}
		})
	}
}
