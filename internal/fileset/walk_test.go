package fileset

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type names []string

func (n names) Match(rel string, isDir bool) bool {
	for _, x := range n {
		if filepath.Base(rel) == x {
			return true
		}
	}
	return false
}

// TestWalk: lexical order, a symlinked root followed, symlinks below it
// reported as links, excludes below the root only, and never skyward's
// data directory or a plan file, whatever the patterns.
func TestWalk(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"real/a.txt":                "a",
		"real/sub/b.txt":            "b",
		"real/skip.me":              "x",
		"real/.skyward/state.json":  "{}",
		"real/.skyward/keys/dev/id": "secret",
		"real/deep/.skyward/token":  "secret",
		"real/saved.plan":           "{\n  \"format\": \"skyward-plan\",\n  \"format_version\": 2\n}",
		"real/not-a-plan.json":      "{\n  \"format\": \"other\"\n}",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("real", filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "real", "alias")); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := Walk(filepath.Join(dir, "linked"), names{"skip.me", "linked"}, func(rel string, info fs.FileInfo, full string) error {
		kind := "f"
		switch {
		case info.IsDir():
			kind = "d"
		case info.Mode()&fs.ModeSymlink != 0:
			kind = "l"
		}
		got = append(got, kind+" "+rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"d linked", "f linked/a.txt", "l linked/alias", "d linked/deep", "f linked/not-a-plan.json", "d linked/sub", "f linked/sub/b.txt"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("walked (-want +got):\n%s", diff)
	}
	for _, g := range got {
		if strings.Contains(g, ".skyward") || strings.Contains(g, "plan") && !strings.Contains(g, "not-a-plan") {
			t.Errorf("walked %s", g)
		}
	}
}
