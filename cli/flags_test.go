package cli

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseArgs(t *testing.T) {
	tests := map[string]struct {
		args       []string
		json       bool
		vars       []string
		positional []string
		rest       []string
		err        bool
	}{
		"flags first":         {args: []string{"-json", "hello"}, json: true, positional: []string{"hello"}},
		"flags after":         {args: []string{"hello", "-json"}, json: true, positional: []string{"hello"}},
		"two dashes":          {args: []string{"--json", "a", "--var", "x=1", "b"}, json: true, vars: []string{"x=1"}, positional: []string{"a", "b"}},
		"repeated var":        {args: []string{"-var=a=1", "-var", "b=2"}, vars: []string{"a=1", "b=2"}},
		"rest after dashes":   {args: []string{"dev/1", "--", "ls", "-json"}, positional: []string{"dev/1"}, rest: []string{"ls", "-json"}},
		"unknown flag":        {args: []string{"-nope"}, err: true},
		"empty":               {args: nil},
		"dashes then nothing": {args: []string{"x", "--"}, positional: []string{"x"}, rest: []string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fs := newFlagSet("t")
			jsonOut := fs.Bool("json", false, "")
			var vars stringList
			fs.Var(&vars, "var", "")
			pos, rest, err := parseArgs(fs, tc.args)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if tc.err {
				return
			}
			if *jsonOut != tc.json {
				t.Errorf("json = %v, want %v", *jsonOut, tc.json)
			}
			if diff := cmp.Diff(tc.vars, []string(vars)); diff != "" {
				t.Errorf("vars (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.positional, pos); diff != "" {
				t.Errorf("positional (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.rest, rest); diff != "" {
				t.Errorf("rest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestShellJoin(t *testing.T) {
	tests := map[string]struct {
		argv []string
		want string
	}{
		"one argument as written": {argv: []string{"echo $HOME"}, want: "echo $HOME"},
		"plain words":             {argv: []string{"ls", "-la", "/tmp"}, want: "ls -la /tmp"},
		"quoted":                  {argv: []string{"echo", "a b", "it's"}, want: `echo 'a b' 'it'\''s'`},
		"empty argument":          {argv: []string{"printf", ""}, want: "printf ''"},
		"none":                    {argv: nil, want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := shellJoin(tc.argv); got != tc.want {
				t.Errorf("shellJoin(%q) = %q, want %q", tc.argv, got, tc.want)
			}
		})
	}
}

func TestParseArgsHelp(t *testing.T) {
	tests := map[string][]string{
		"-h":             {"-h"},
		"--help":         {"--help"},
		"-help":          {"-help"},
		"after an arg":   {"hello", "-h"},
		"after a flag":   {"-json", "--help"},
		"before dashes":  {"-h", "--", "ls"},
		"with bad flags": {"-h", "-nope"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			fs := newFlagSet("t")
			fs.Bool("json", false, "")
			_, _, err := parseArgs(fs, args)
			var hr helpRequest
			if !errors.As(err, &hr) || hr.fs != fs {
				t.Fatalf("parseArgs(%q) = %v, want a helpRequest for the flag set", args, err)
			}
		})
	}
}

func TestTakeNoColor(t *testing.T) {
	tests := map[string]struct {
		args, want []string
		color      bool
	}{
		"none":             {args: []string{"plan", "-json"}, want: []string{"plan", "-json"}, color: true},
		"one dash":         {args: []string{"plan", "-no-color"}, want: []string{"plan"}},
		"two dashes":       {args: []string{"--no-color", "apply"}, want: []string{"apply"}},
		"=true":            {args: []string{"plan", "-no-color=true"}, want: []string{"plan"}},
		"after -- is kept": {args: []string{"ssh", "dev/0", "--", "ls", "-no-color"}, want: []string{"ssh", "dev/0", "--", "ls", "-no-color"}, color: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := &Meta{Color: true}
			got := takeNoColor(m, tc.args)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			if m.Color != tc.color {
				t.Errorf("Color = %v, want %v", m.Color, tc.color)
			}
		})
	}
}

func TestGuardedWriter(t *testing.T) {
	tests := map[string]struct {
		failAt int // the write that fails (1-based); 0: none
		writes int
		want   string
		broken bool
	}{
		"passes writes on":             {writes: 3, want: "xxx"},
		"drops writes after a failure": {failAt: 2, writes: 4, want: "x", broken: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := &failingWriter{failAt: tc.failAt}
			g := &guardedWriter{w: w}
			for range tc.writes {
				if n, err := g.Write([]byte("x")); n != 1 || err != nil {
					t.Fatalf("Write = %d, %v; want 1, nil", n, err)
				}
			}
			if w.b.String() != tc.want {
				t.Errorf("written %q, want %q", w.b.String(), tc.want)
			}
			if g.broken() != tc.broken {
				t.Errorf("broken = %v, want %v", g.broken(), tc.broken)
			}
			if tc.broken && w.calls != tc.failAt {
				t.Errorf("%d writes reached the writer, want %d: none after the failure", w.calls, tc.failAt)
			}
		})
	}
}

type failingWriter struct {
	b      strings.Builder
	failAt int
	calls  int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	f.calls++
	if f.failAt > 0 && f.calls >= f.failAt {
		return 0, syscall.EPIPE
	}
	return f.b.Write(p)
}
