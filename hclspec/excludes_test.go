package hclspec

import (
	"strings"
	"testing"
)

func TestExcludes(t *testing.T) {
	type probe struct {
		rel   string
		isDir bool
		want  bool
	}
	tests := map[string]struct {
		patterns []string
		probes   []probe
	}{
		"a name at any depth": {[]string{"__pycache__", "*.pyc"}, []probe{
			{"__pycache__", true, true}, {"a/b/__pycache__", true, true}, {"a/x.pyc", false, true}, {"a/x.py", false, false},
		}},
		"a path is anchored at the include": {[]string{"build/out"}, []probe{
			{"build/out", true, true}, {"build/out", false, true}, {"src/build/out", true, false}, {"build", true, false},
		}},
		"leading slash anchors a name": {[]string{"/dist"}, []probe{
			{"dist", true, true}, {"a/dist", true, false},
		}},
		"double star": {[]string{"**/*"}, []probe{
			{"a", false, true}, {"a/b/c", false, true},
		}},
		"double star in the middle": {[]string{"a/**/z"}, []probe{
			{"a/z", false, true}, {"a/b/c/z", false, true}, {"b/z", false, false},
		}},
		"directories only": {[]string{"logs/"}, []probe{
			{"logs", true, true}, {"logs", false, false}, {"x/logs", true, true},
		}},
		"negation, last match wins": {[]string{"*.txt", "!keep.txt"}, []probe{
			{"a.txt", false, true}, {"keep.txt", false, false}, {"d/keep.txt", false, false},
		}},
		"the root is never excluded": {[]string{"**/*"}, []probe{
			{"", true, false}, {".", true, false},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := NewExcludes(tc.patterns)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.probes {
				if got := e.Match(p.rel, p.isDir); got != p.want {
					t.Errorf("Match(%q, dir=%v) = %v, want %v", p.rel, p.isDir, got, p.want)
				}
			}
		})
	}
}

func TestCheckExcludePattern(t *testing.T) {
	tests := map[string]string{
		"[":        "malformed",
		"a/[b":     "malformed",
		`x\`:       "malformed",
		"":         "empty",
		"  ":       "empty",
		"!":        "empty",
		"/":        "empty",
		"# note":   "comment",
		"a**b":     "whole path segment",
		"**/*.pyc": "",
		"build/":   "",
		`\#x`:      "",
	}
	for p, want := range tests {
		t.Run(p, func(t *testing.T) {
			err := CheckExcludePattern(p)
			switch {
			case want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("error %v, want one saying %q", err, want)
			}
		})
	}
}
