package planner

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWalkIncludesExcludes: excludes are .gitignore patterns relative to
// the include, names and paths alike.
func TestWalkIncludesExcludes(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"src/a.py", "src/a.pyc", "src/build/out/big.bin", "src/build/keep.txt",
		"src/lib/build/out/also.txt", "src/__pycache__/x.pyc"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	walk := func(excludes []string) ([]string, error) {
		var got []string
		err := WalkIncludes(filepath.Join(dir, "src"), excludes, func(rel string, info fs.FileInfo, _ string) error {
			if !info.IsDir() {
				got = append(got, rel)
			}
			return nil
		})
		return got, err
	}
	got, err := walk([]string{"build/out", "*.pyc", "__pycache__"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"src/a.py", "src/build/keep.txt", "src/lib/build/out/also.txt"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("walked (-want +got):\n%s", diff)
	}
	if got, _ := walk([]string{"**/*"}); len(got) != 0 {
		t.Errorf("**/* left %q", got)
	}
	if _, err := walk([]string{"["}); err == nil {
		t.Error("a malformed pattern was accepted")
	}
	h1, _ := IncludesHash(dir, []string{"src"}, []string{"build/out"})
	os.WriteFile(filepath.Join(dir, "src/build/out/big.bin"), []byte("changed"), 0o644)
	h2, _ := IncludesHash(dir, []string{"src"}, []string{"build/out"})
	if h1 != h2 || h1 == "" {
		t.Errorf("an excluded file changed the includes hash: %s, %s", h1, h2)
	}
}
