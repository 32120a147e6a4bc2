package container

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPruneNodeFiles(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	old := now.Add(-2 * nodeFilesTTL)
	mk := func(rel string, mtime time.Time) string {
		dir := filepath.Join(root, rel)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	gone := mk("lineage-a/skyward-a-dev-0", old)    // its container was removed by hand
	mounted := mk("lineage-a/skyward-a-dev-1", old) // a node stopped long ago
	young := mk("lineage-b/skyward-b-dev-0", now)   // a node being created
	lonely := mk("lineage-c/skyward-c-dev-0", old)  // the last of its lineage
	empty := mk("lineage-e", old)                   // emptied long ago
	if err := os.Chtimes(filepath.Dir(lonely), old, old); err != nil {
		t.Fatal(err)
	}

	inUse := func() (map[string]bool, error) { return map[string]bool{mounted: true}, nil }
	pruneNodeFiles(root, now, inUse)
	// A lineage's directory goes once it has been empty for a while: a
	// node of it may be being created.
	for dir, want := range map[string]bool{gone: false, mounted: true, young: true, lonely: false, filepath.Dir(lonely): true, empty: false} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", dir, err == nil, want)
		}
	}

	// When the engine cannot say what is mounted, nothing goes.
	again := mk("lineage-d/skyward-d-dev-0", old)
	pruneNodeFiles(root, now, func() (map[string]bool, error) { return nil, errors.New("engine down") })
	if _, err := os.Stat(again); err != nil {
		t.Errorf("pruned without knowing the mounts: %v", err)
	}
}
