//go:build linux

package agent

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tarEntry is one entry of a bootstrap stream after recipe.json.
type tarEntry struct {
	name string
	body string
	mode int64
	dir  bool
	link string // a symlink to this
}

// stream builds the tar stream of docs/node-protocol.md.
func stream(t *testing.T, r Recipe, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	recipe, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	write := func(h *tar.Header, body string) {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	write(&tar.Header{Name: "recipe.json", Mode: 0o644, Size: int64(len(recipe)), Typeflag: tar.TypeReg}, string(recipe))
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: time.Unix(1700000000, 0)}
		switch {
		case e.dir:
			h.Typeflag = tar.TypeDir
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		write(h, e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeRunner records apt and pip commands instead of running them and runs
// the others (setup) for real. fail, if set, decides the result of a
// recorded command.
type fakeRunner struct {
	mu   sync.Mutex
	cmds []phaseCmd
	fail func(c phaseCmd) error
}

// testBootstrap is a bootstrap on a temporary root whose apt and pip
// commands are faked.
type testBootstrap struct {
	root  string
	path  string // PATH that programs are looked up in
	fake  *fakeRunner
	start bool // -start
}

func newTestBootstrap(t *testing.T) *testBootstrap {
	return &testBootstrap{root: t.TempDir(), path: os.Getenv("PATH"), fake: &fakeRunner{}}
}

// result is what one run of a bootstrap printed.
type bootResult struct {
	code   int
	lines  []PhaseLine
	stderr string
}

// phases lists "phase:status" for every phase line.
func (r bootResult) phases() []string {
	var out []string
	for _, l := range r.lines {
		if l.Type == "phase" {
			out = append(out, l.Phase+":"+l.Status)
		}
	}
	return out
}

// outputs lists "phase/stream: line" for every output line.
func (r bootResult) outputs() []string {
	var out []string
	for _, l := range r.lines {
		if l.Type == "output" {
			out = append(out, l.Phase+"/"+l.Stream+": "+l.Line)
		}
	}
	return out
}

// parseLines checks that every line of out is one JSON PhaseLine.
func parseLines(t *testing.T, out []byte) []PhaseLine {
	t.Helper()
	var lines []PhaseLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l PhaseLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil || dec.More() {
			t.Fatalf("output line %q is not one JSON object: %v", sc.Text(), err)
		}
		if l.Type != "phase" && l.Type != "output" {
			t.Errorf("line %q: bad type", sc.Text())
		}
		lines = append(lines, l)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		t.Errorf("output does not end with a newline: %q", out)
	}
	return lines
}

func (tb *testBootstrap) run(t *testing.T, input []byte) bootResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	b := newBootstrap(tb.root, &stdout, cancel)
	b.path = tb.path
	b.start = tb.start
	b.run = func(ctx context.Context, c phaseCmd) error {
		if c.Phase != "apt" && c.Phase != "pip" {
			return b.command(ctx, c)
		}
		tb.fake.mu.Lock()
		tb.fake.cmds = append(tb.fake.cmds, c)
		fail := tb.fake.fail
		tb.fake.mu.Unlock()
		b.output(c.Phase, "stdout", "fake "+strings.Join(c.Argv, " "))
		if fail != nil {
			return fail(c)
		}
		return nil
	}
	code := b.main(ctx, bytes.NewReader(input), &stderr)
	return bootResult{code: code, lines: parseLines(t, stdout.Bytes()), stderr: stderr.String()}
}

func (tb *testBootstrap) takeCmds() []phaseCmd {
	tb.fake.mu.Lock()
	defer tb.fake.mu.Unlock()
	c := tb.fake.cmds
	tb.fake.cmds = nil
	return c
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBootstrapReruns runs one recipe three times: all phases, then only
// includes (which always re-syncs), then setup again after its list changed.
func TestBootstrapReruns(t *testing.T) {
	tb := newTestBootstrap(t)
	recipe := Recipe{
		Env:      map[string]string{"MY_VAR": "it works"},
		Apt:      []string{"bc"},
		Pip:      []string{"/opt/skyward/wheels/mylib-0.1-py3-none-any.whl", "requests==2.32.3"},
		Setup:    []string{"echo $MY_VAR > out.txt", "cat src/a.py"},
		Includes: true,
	}
	files := []tarEntry{
		{name: "includes/src/", dir: true, mode: 0o755},
		{name: "includes/src/a.py", body: "print('a')\n"},
		{name: "wheels/mylib-0.1-py3-none-any.whl", body: "wheel v1"},
	}

	r := tb.run(t, stream(t, recipe, files...))
	if r.code != 0 {
		t.Fatalf("first run: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	want := []string{"env:started", "env:completed", "apt:started", "apt:completed", "pip:started", "pip:completed",
		"includes:started", "includes:completed", "setup:started", "setup:completed"}
	if diff := cmp.Diff(want, r.phases()); diff != "" {
		t.Errorf("first run phases (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"setup/stdout: print('a')"}, r.outputs()[len(r.outputs())-1:]); diff != "" {
		t.Errorf("setup output (-want +got):\n%s", diff)
	}
	for _, l := range r.lines {
		if l.Status == "completed" && l.DurationMS < 1 {
			t.Errorf("%s completed without a duration", l.Phase)
		}
	}
	if got := readFile(t, filepath.Join(tb.root, "env.json")); got != `{"MY_VAR":"it works"}` {
		t.Errorf("env.json = %s", got)
	}
	if fi, err := os.Stat(filepath.Join(tb.root, "env.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("env.json mode: %v, %v; want 0600 (it may hold secrets)", fi.Mode(), err)
	}
	if got := readFile(t, filepath.Join(tb.root, "work", "out.txt")); got != "it works\n" {
		t.Errorf("setup wrote %q; want the image env's value", got)
	}
	if got := readFile(t, filepath.Join(tb.root, "wheels", "mylib-0.1-py3-none-any.whl")); got != "wheel v1" {
		t.Errorf("wheel = %q", got)
	}
	for _, p := range []string{"env", "apt", "pip", "setup"} {
		if _, err := os.Stat(filepath.Join(tb.root, "state", p+".done")); err != nil {
			t.Errorf("marker of %s: %v", p, err)
		}
	}
	if len(tb.takeCmds()) == 0 {
		t.Errorf("no apt or pip command ran")
	}

	// A file left world-readable (by an older version) is tightened even
	// when the env phase is skipped.
	if err := os.Chmod(filepath.Join(tb.root, "env.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = tb.run(t, stream(t, recipe, files...))
	want = []string{"env:skipped", "apt:skipped", "pip:skipped", "includes:started", "includes:completed", "setup:skipped"}
	if diff := cmp.Diff(want, r.phases()); diff != "" || r.code != 0 {
		t.Errorf("identical rerun: exit %d; phases (-want +got):\n%s", r.code, diff)
	}
	if fi, err := os.Stat(filepath.Join(tb.root, "env.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("env.json mode after a rerun: %v, %v; want 0600", fi.Mode(), err)
	}
	if cmds := tb.takeCmds(); len(cmds) != 0 {
		t.Errorf("identical rerun ran %v", cmds)
	}

	recipe.Setup = append(recipe.Setup, "echo again")
	r = tb.run(t, stream(t, recipe, files...))
	want = []string{"env:skipped", "apt:skipped", "pip:skipped", "includes:started", "includes:completed", "setup:started", "setup:completed"}
	if diff := cmp.Diff(want, r.phases()); diff != "" || r.code != 0 {
		t.Errorf("changed setup: exit %d; phases (-want +got):\n%s", r.code, diff)
	}

	// A local pip file's contents are part of the pip phase's input.
	files[2].body = "wheel v2"
	r = tb.run(t, stream(t, recipe, files...))
	want = []string{"env:skipped", "apt:skipped", "pip:started", "pip:completed", "includes:started", "includes:completed", "setup:skipped"}
	if diff := cmp.Diff(want, r.phases()); diff != "" || r.code != 0 {
		t.Errorf("changed wheel: exit %d; phases (-want +got):\n%s", r.code, diff)
	}
}

func TestBootstrapEmptyRecipe(t *testing.T) {
	tb := newTestBootstrap(t)
	r := tb.run(t, stream(t, Recipe{}))
	want := []string{"env:started", "env:completed", "apt:skipped", "pip:skipped", "includes:skipped", "setup:skipped"}
	if diff := cmp.Diff(want, r.phases()); diff != "" || r.code != 0 {
		t.Errorf("exit %d; phases (-want +got):\n%s", r.code, diff)
	}
	if cmds := tb.takeCmds(); len(cmds) != 0 {
		t.Errorf("ran %v", cmds)
	}
	if got := readFile(t, filepath.Join(tb.root, "env.json")); got != "{}" {
		t.Errorf("env.json = %s", got)
	}
	if fi, err := os.Stat(filepath.Join(tb.root, "work")); err != nil || !fi.IsDir() {
		t.Errorf("work directory: %v", err)
	}
}

// TestBootstrapCommands checks the apt and pip command lines against the
// protocol.
func TestBootstrapCommands(t *testing.T) {
	tests := map[string]struct {
		recipe Recipe
		uv     bool // uv on PATH
		venv   bool // the venv exists
		want   func(root string) []phaseCmd
	}{
		"apt": {
			recipe: Recipe{Apt: []string{"bc", "curl"}},
			want: func(string) []phaseCmd {
				env := []string{"DEBIAN_FRONTEND=noninteractive"}
				return []phaseCmd{
					{Phase: "apt", Dir: "/", Env: env, Argv: []string{"apt-get", "update", "-q"}},
					{Phase: "apt", Dir: "/", Env: env, Argv: []string{"apt-get", "install", "-y", "-q", "--no-install-recommends", "bc", "curl"}},
				}
			},
		},
		"pip with uv": {
			recipe: Recipe{Pip: []string{"requests==2.32.3", "numpy"}},
			uv:     true,
			want: func(root string) []phaseCmd {
				return []phaseCmd{
					{Phase: "pip", Dir: "/", Argv: []string{"uv", "venv", root + "/venv"}},
					{Phase: "pip", Dir: "/", Argv: []string{"uv", "pip", "install", "--python", root + "/venv/bin/python", "requests==2.32.3", "numpy"}},
				}
			},
		},
		"pip with uv and a venv": {
			recipe: Recipe{Pip: []string{"numpy"}},
			uv:     true,
			venv:   true,
			want: func(root string) []phaseCmd {
				return []phaseCmd{
					{Phase: "pip", Dir: "/", Argv: []string{"uv", "pip", "install", "--python", root + "/venv/bin/python", "numpy"}},
				}
			},
		},
		"pip without uv": {
			recipe: Recipe{Pip: []string{"requests==2.32.3"}},
			want: func(root string) []phaseCmd {
				return []phaseCmd{
					{Phase: "pip", Dir: "/", Argv: []string{"python3", "-m", "venv", root + "/venv"}},
					{Phase: "pip", Dir: "/", Argv: []string{root + "/venv/bin/pip", "install", "--disable-pip-version-check", "--no-input", "requests==2.32.3"}},
				}
			},
		},
		"pip without uv and a venv": {
			recipe: Recipe{Pip: []string{"numpy"}},
			venv:   true,
			want: func(root string) []phaseCmd {
				return []phaseCmd{
					{Phase: "pip", Dir: "/", Argv: []string{root + "/venv/bin/pip", "install", "--disable-pip-version-check", "--no-input", "numpy"}},
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tb := newTestBootstrap(t)
			bin := t.TempDir()
			tb.path = bin
			if tc.uv {
				if err := os.WriteFile(filepath.Join(bin, "uv"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.venv {
				if err := os.MkdirAll(filepath.Join(tb.root, "venv", "bin"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(tb.root, "venv", "bin", "python"), nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			r := tb.run(t, stream(t, tc.recipe))
			if r.code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
			}
			if diff := cmp.Diff(tc.want(tb.root), tb.takeCmds()); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBootstrapIncludes(t *testing.T) {
	tb := newTestBootstrap(t)
	recipe := Recipe{Includes: true}
	r := tb.run(t, stream(t, recipe,
		tarEntry{name: "includes/src/run.sh", body: "#!/bin/sh\n", mode: 0o755},
		tarEntry{name: "includes/src/secret", body: "s", mode: 0o600},
		tarEntry{name: "includes/old.txt", body: "old"},
		tarEntry{name: "includes/ro", dir: true, mode: 0o555},
		tarEntry{name: "includes/ro/f", body: "f", mode: 0o444},
		tarEntry{name: "includes/link", link: "src/run.sh"},
	))
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	work := filepath.Join(tb.root, "work")
	modes := map[string]fs.FileMode{}
	filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(work, p)
		modes[rel] = fi.Mode()
		return nil
	})
	want := map[string]fs.FileMode{
		".":          fs.ModeDir | 0o755,
		"src":        fs.ModeDir | 0o755,
		"src/run.sh": 0o755,
		"src/secret": 0o600,
		"old.txt":    0o644,
		"ro":         fs.ModeDir | 0o555,
		"ro/f":       0o444,
		"link":       fs.ModeSymlink | 0o777,
	}
	if diff := cmp.Diff(want, modes); diff != "" {
		t.Errorf("work tree (-want +got):\n%s", diff)
	}

	// old.txt is no longer included: it goes.
	r = tb.run(t, stream(t, recipe, tarEntry{name: "includes/src/run.sh", body: "#!/bin/sh\necho 2\n", mode: 0o755}))
	if r.code != 0 {
		t.Fatalf("second run: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(work, "old.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old.txt after it was removed from the includes: %v", err)
	}
	if got := readFile(t, filepath.Join(work, "src", "run.sh")); got != "#!/bin/sh\necho 2\n" {
		t.Errorf("run.sh = %q", got)
	}
	for _, dir := range []string{"work.new", "work.old"} {
		if _, err := os.Stat(filepath.Join(tb.root, dir)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind: %v", dir, err)
		}
	}

	// No includes at all: an empty work directory.
	r = tb.run(t, stream(t, recipe))
	if entries, err := os.ReadDir(work); err != nil || len(entries) != 0 || r.code != 0 {
		t.Errorf("includes without files: exit %d, work holds %v, %v", r.code, entries, err)
	}
}

// TestBootstrapRefusesEntries checks that nothing runs and nothing is
// written outside the root for a bad stream.
func TestBootstrapRefusesEntries(t *testing.T) {
	tests := map[string]struct {
		entries []tarEntry
		first   string // name of the first entry instead of recipe.json
		want    string // in stderr
	}{
		"dot-dot":                   {entries: []tarEntry{{name: "../evil", body: "x"}}, want: "leaves its directory"},
		"dot-dot inside":            {entries: []tarEntry{{name: "includes/../../evil", body: "x"}}, want: "leaves its directory"},
		"dot-dot staying":           {entries: []tarEntry{{name: "includes/a/../b", body: "x"}}, want: "leaves its directory"},
		"absolute":                  {entries: []tarEntry{{name: "/tmp/evil", body: "x"}}, want: "absolute path"},
		"unexpected":                {entries: []tarEntry{{name: "other/file", body: "x"}}, want: "unexpected tar entry"},
		"through a symlink":         {entries: []tarEntry{{name: "includes/up", link: ".."}, {name: "includes/up/evil", body: "x"}}, want: "symbolic link"},
		"recipe not first":          {first: "includes/a", want: "not recipe.json"},
		"wheels dot-dot inside":     {entries: []tarEntry{{name: "wheels/../../evil", body: "x"}}, want: "leaves its directory"},
		"agent.json without -start": {entries: []tarEntry{{name: "agent.json", body: "{}"}}, want: "unexpected tar entry"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tb := newTestBootstrap(t)
			tb.root = filepath.Join(tb.root, "a", "b")
			input := stream(t, Recipe{Env: map[string]string{"A": "1"}, Includes: true}, tc.entries...)
			if tc.first != "" {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				tw.WriteHeader(&tar.Header{Name: tc.first, Mode: 0o644, Typeflag: tar.TypeReg})
				tw.Close()
				input = buf.Bytes()
			}
			r := tb.run(t, input)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, tc.want)
			}
			if len(r.lines) != 0 {
				t.Errorf("phases ran: %v", r.phases())
			}
			for _, p := range []string{"../evil", "../../evil", "evil"} {
				if _, err := os.Lstat(filepath.Join(tb.root, p)); err == nil {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

func TestBootstrapFailures(t *testing.T) {
	tests := map[string]struct {
		recipe  Recipe
		fail    func(phaseCmd) error
		phases  []string
		outputs []string
		failed  PhaseLine
	}{
		"setup": {
			recipe: Recipe{Setup: []string{"echo one", "echo two >&2; exit 3", "echo never"}},
			phases: []string{"env:skipped", "apt:skipped", "pip:skipped", "includes:skipped", "setup:started", "setup:failed"},
			outputs: []string{
				"setup/stdout: one",
				"setup/stderr: two",
			},
			failed: PhaseLine{Type: "phase", Phase: "setup", Status: "failed", ExitCode: 3, Error: "exit status 3"},
		},
		"setup killed": {
			recipe: Recipe{Setup: []string{"kill -9 $$"}},
			phases: []string{"env:skipped", "apt:skipped", "pip:skipped", "includes:skipped", "setup:started", "setup:failed"},
			failed: PhaseLine{Type: "phase", Phase: "setup", Status: "failed", ExitCode: 137, Error: "signal: killed"},
		},
		"apt": {
			recipe: Recipe{Apt: []string{"nope"}, Pip: []string{"x"}, Setup: []string{"true"}},
			fail: func(c phaseCmd) error {
				if c.Argv[1] == "install" {
					return &exitError{code: 100, msg: "exit status 100"}
				}
				return nil
			},
			phases: []string{"env:skipped", "apt:started", "apt:failed"},
			outputs: []string{
				"apt/stdout: fake apt-get update -q",
				"apt/stdout: fake apt-get install -y -q --no-install-recommends nope",
			},
			failed: PhaseLine{Type: "phase", Phase: "apt", Status: "failed", ExitCode: 100, Error: "exit status 100"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tb := newTestBootstrap(t)
			// A first run with other inputs completes every phase and
			// leaves markers; the failed phase's marker must go.
			ok := tc.recipe
			ok.Setup = []string{"true"}
			if len(ok.Apt) > 0 {
				ok.Apt = []string{"other"}
			}
			if r := tb.run(t, stream(t, ok)); r.code != 0 {
				t.Fatalf("first run: exit %d; stderr:\n%s", r.code, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(tb.root, "state", tc.failed.Phase+".done")); err != nil {
				t.Fatalf("first run left no marker: %v", err)
			}
			tb.takeCmds()
			tb.fake.fail = tc.fail

			r := tb.run(t, stream(t, tc.recipe))
			if r.code != 1 {
				t.Errorf("exit %d; want 1", r.code)
			}
			if diff := cmp.Diff(tc.phases, r.phases()); diff != "" {
				t.Errorf("phases (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.outputs, r.outputs()); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.failed, r.lines[len(r.lines)-1]); diff != "" {
				t.Errorf("last line (-want +got):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(tb.root, "state", tc.failed.Phase+".done")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("marker of the failed phase: %v; want none", err)
			}
		})
	}
}

// TestBootstrapSetupEnvironment checks where and with what setup commands
// run: the work directory, the image's env, the venv first on PATH.
func TestBootstrapSetupEnvironment(t *testing.T) {
	tb := newTestBootstrap(t)
	venvBin := filepath.Join(tb.root, "venv", "bin")
	if err := os.MkdirAll(venvBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(venvBin, "hello"), []byte("#!/bin/sh\necho hello from the venv\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	recipe := Recipe{
		Env:   map[string]string{"GREETING": "hi there", "HOME": "/nowhere"},
		Setup: []string{"pwd", `echo "$GREETING $HOME"`, "hello", `echo "${PATH%%:*}"`},
	}
	r := tb.run(t, stream(t, recipe))
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	want := []string{
		"setup/stdout: " + filepath.Join(tb.root, "work"),
		"setup/stdout: hi there /nowhere",
		"setup/stdout: hello from the venv",
		"setup/stdout: " + venvBin,
	}
	if diff := cmp.Diff(want, r.outputs()); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
}

// TestBootstrapLongLine checks that a line longer than the read buffer is
// reported, in pieces, and that output without a final newline is kept.
func TestBootstrapLongLine(t *testing.T) {
	tb := newTestBootstrap(t)
	r := tb.run(t, stream(t, Recipe{Setup: []string{"head -c 200000 /dev/zero | tr '\\0' x; echo; printf tail"}}))
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	outs := r.outputs()
	if len(outs) < 3 || outs[len(outs)-1] != "setup/stdout: tail" {
		t.Fatalf("outputs end with %q", outs[max(len(outs)-1, 0):])
	}
	var long strings.Builder
	for _, o := range outs[:len(outs)-1] {
		long.WriteString(strings.TrimPrefix(o, "setup/stdout: "))
	}
	if long.String() != strings.Repeat("x", 200000) {
		t.Errorf("the long line came back as %d bytes", long.Len())
	}
}

// failingWriter fails every write after the first output line.
type failingWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte(`"type":"output"`)) {
		return 0, errors.New("broken pipe")
	}
	return w.buf.Write(p)
}

// TestBootstrapBrokenOutput checks that a command's process group is killed
// once its output can no longer be delivered.
func TestBootstrapBrokenOutput(t *testing.T) {
	root := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	var out failingWriter
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	b := newBootstrap(root, &out, cancel)
	input := stream(t, Recipe{Setup: []string{fmt.Sprintf("sleep 30 & echo $! > %s; echo started; wait", pidFile)}})
	start := time.Now()
	code := b.main(ctx, bytes.NewReader(input), &stderr)
	if code != 1 {
		t.Errorf("exit %d; want 1", code)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("bootstrap took %s: the command was not killed", d)
	}
	waitGone(t, waitPidFile(t, pidFile))
	if !strings.Contains(stderr.String(), "broken pipe") {
		t.Errorf("stderr %q lacks the cause", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(root, "state", "setup.done")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("setup marker: %v; want none", err)
	}
}

func TestWatchHangup(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fired := make(chan struct{})
	done := make(chan struct{})
	go func() {
		watchHangup(ctx, w, func() { close(fired) })
		close(done)
	}()
	select {
	case <-fired:
		t.Fatal("hangup reported while the pipe is read")
	case <-time.After(300 * time.Millisecond):
	}
	r.Close()
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("closed reader not noticed")
	}
	<-done
}

// TestRunBootstrap runs the command as the CLI does, with -root.
func TestRunBootstrap(t *testing.T) {
	root := t.TempDir()
	var stdout, stderr bytes.Buffer
	input := stream(t, Recipe{Env: map[string]string{"A": "b"}, Setup: []string{"echo $A"}, Includes: true},
		tarEntry{name: "includes/x", body: "x"})
	code := RunBootstrap([]string{"-root", root}, bytes.NewReader(input), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var got []string
	for _, l := range parseLines(t, stdout.Bytes()) {
		s := l.Phase + ":" + l.Status + l.Line
		got = append(got, s)
	}
	want := []string{"env:started", "env:completed", "apt:skipped", "pip:skipped", "includes:started", "includes:completed",
		"setup:started", "setup:b", "setup:completed"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if readFile(t, filepath.Join(root, "work", "x")) != "x" {
		t.Errorf("include not extracted")
	}

	for name, args := range map[string][]string{"unknown flag": {"-nope"}, "extra argument": {"extra"}} {
		if code := RunBootstrap(args, strings.NewReader(""), &stdout, &stderr); code != 2 {
			t.Errorf("%s: exit %d; want 2", name, code)
		}
	}
}

// With -start, the agent's configuration must follow the recipe; a stream
// without it (or with something else) starts nothing and runs no phase.
func TestBootstrapStartNeedsConfig(t *testing.T) {
	tests := map[string]struct {
		entries []tarEntry
		want    string
	}{
		"none":         {nil, "followed by agent.json"},
		"another file": {[]tarEntry{{name: "includes/a", body: "x"}}, "followed by agent.json"},
		"not JSON":     {[]tarEntry{{name: "agent.json", body: "{pool"}}, "not JSON"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tb := newTestBootstrap(t)
			tb.start = true
			r := tb.run(t, stream(t, Recipe{Setup: []string{"true"}}, tc.entries...))
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, tc.want)
			}
			if len(r.lines) != 0 {
				t.Errorf("ran: %v", r.lines)
			}
			if _, err := os.Stat(filepath.Join(tb.root, "agent.json")); err == nil {
				t.Error("agent.json was written")
			}
		})
	}
}

func TestStopPidFile(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "agent.pid")
	if err := stopPidFile(pidFile, time.Second); err != nil {
		t.Fatalf("no pid file: %v", err)
	}
	start := func(t *testing.T, cmd *exec.Cmd) <-chan error {
		t.Helper()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return exited
	}

	t.Run("agent", func(t *testing.T) {
		// An agent that ignores SIGTERM is killed after the grace.
		cmd := exec.Command(os.Args[0], "agent", "serve", "-config", filepath.Join(dir, "agent.json"))
		cmd.Env = append(os.Environ(), fakeServeEnv+"=1")
		exited := start(t, cmd)
		select {
		case err := <-exited:
			t.Fatalf("the stand-in agent ended by itself: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if !isAgentServe(cmd.Process.Pid) {
			t.Fatal("the stand-in agent is not taken for one")
		}
		if err := stopPidFile(pidFile, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Fatal("the agent still runs")
		}
		if _, err := os.Stat(pidFile); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("pid file after the stop: %v, want it removed", err)
		}
	})

	t.Run("stale", func(t *testing.T) {
		// A pid file from before a restart, naming another process now.
		exited := start(t, exec.Command("sleep", "30"))
		if err := stopPidFile(pidFile, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			t.Fatalf("a process that is no agent was stopped: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		if _, err := os.Stat(pidFile); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale pid file: %v, want it removed", err)
		}
	})
}
