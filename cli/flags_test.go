package cli

import (
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
