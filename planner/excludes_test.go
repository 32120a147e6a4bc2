package planner

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/internal/fileset"
	"github.com/skyward-sh/skyward/internal/skytest"
	"github.com/skyward-sh/skyward/state"
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
		excl, err := hclspec.NewExcludes(excludes)
		if err != nil {
			return nil, err
		}
		err = fileset.Walk(filepath.Join(dir, "src"), excl, func(rel string, info fs.FileInfo, _ string) error {
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

// TestIncludesHashFollowsSymlinkedInclude: an include that is a symlink to
// a directory is hashed by what it points to, as the bootstrap uploads it,
// so editing a file under it changes the hash.
func TestIncludesHashFollowsSymlinkedInclude(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "real", "f.txt"), []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	h1, err := IncludesHash(dir, []string{"linked"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "real", "f.txt"), []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	h2, err := IncludesHash(dir, []string{"linked"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Errorf("editing a file under a symlinked include left the hash at %s", h1)
	}
}

// TestIncludesHashLeavesOutDataDirAndPlans: includes = ["."] never takes in
// .skyward/ (keys, the state) or a plan file, so the hash does not change
// when apply rewrites the state or a plan is saved, and the plan converges.
func TestIncludesHashLeavesOutDataDirAndPlans(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".skyward", "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte("print(1)"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(".skyward/state.json", `{"serial": 1}`)
	h1, err := IncludesHash(dir, []string{"."}, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(".skyward/state.json", `{"serial": 2}`)
	write(".skyward/keys/token", "secret")
	p, err := Build(skytest.Config(1, 1, "img"), state.New("l"), skytest.Registry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePlanFile(filepath.Join(dir, "tfplan"), dir, p); err != nil {
		t.Fatal(err)
	}
	h2, err := IncludesHash(dir, []string{"."}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Errorf("the includes hash changed with the state, the keys or a plan file: %s -> %s", h1, h2)
	}
	write("app.py", "print(2)")
	if h3, _ := IncludesHash(dir, []string{"."}, nil); h3 == h2 {
		t.Errorf("the includes hash did not change with app.py")
	}
}
