package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func forgetSums() {
	sumMu.Lock()
	clear(sumCache)
	sumMu.Unlock()
}

func TestFileSumCache(t *testing.T) {
	dir := t.TempDir()
	old := SumCacheDir
	SumCacheDir = filepath.Join(dir, "sums")
	t.Cleanup(func() { SumCacheDir = old; forgetSums() })

	bin := filepath.Join(dir, "skyward")
	write := func(content string) string {
		if err := os.WriteFile(bin, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256([]byte(content))
		return hex.EncodeToString(s[:])
	}
	want := write("first build")
	if runtime.GOOS != "linux" {
		// No file identity to key them by: sums stay in this process.
		if got, err := FileSum(bin); err != nil || got != want {
			t.Fatalf("sum %q, %v; want %q", got, err, want)
		}
		if entries, _ := os.ReadDir(SumCacheDir); len(entries) != 0 {
			t.Errorf("off Linux the cache got entries: %v", entries)
		}
		return
	}

	// Many nodes asking at once get one sum.
	var wg sync.WaitGroup
	sums := make([]string, 8)
	for i := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], _ = FileSum(bin)
		}()
	}
	wg.Wait()
	for i, got := range sums {
		if got != want {
			t.Fatalf("call %d: sum %q, want %q", i, got, want)
		}
	}
	entries, err := os.ReadDir(SumCacheDir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("cache entries: %v, %v; want one", entries, err)
	}
	entry := filepath.Join(SumCacheDir, entries[0].Name())

	// A new process reads the sum from the cache instead of hashing: an
	// entry that says otherwise is believed while the file is unchanged.
	forged := hex.EncodeToString(make([]byte, sha256.Size))
	if err := os.WriteFile(entry, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	forgetSums()
	if got, err := FileSum(bin); err != nil || got != forged {
		t.Fatalf("unchanged file: sum %q, %v; want the cached %q", got, err, forged)
	}

	// Any write makes it a different file: hashed again.
	want = write("second build")
	forgetSums()
	if got, err := FileSum(bin); err != nil || got != want {
		t.Fatalf("rewritten file: sum %q, %v; want %q", got, err, want)
	}

	// A damaged entry is ignored.
	for _, e := range mustReadDir(t, SumCacheDir) {
		os.WriteFile(filepath.Join(SumCacheDir, e.Name()), []byte("garbage"), 0o600)
	}
	forgetSums()
	if got, err := FileSum(bin); err != nil || got != want {
		t.Fatalf("damaged entry: sum %q, %v; want %q", got, err, want)
	}
}

func TestFileSumMissing(t *testing.T) {
	if _, err := FileSum(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("sum of a missing file: no error")
	}
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	e, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLinkBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sum := strings.Repeat("ab", 32)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "skyward")
	check := func(t *testing.T, wantSum string) {
		t.Helper()
		target, err := os.Readlink(bin)
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(bin), target)
		}
		if target != self {
			t.Errorf("%s links to %s, want %s", bin, target, self)
		}
		if got, err := os.ReadFile(bin + ".sha256"); err != nil || string(got) != wantSum+"\n" {
			t.Errorf("recorded sum %q (%v), want %s", got, err, wantSum)
		}
	}

	t.Run("missing", func(t *testing.T) {
		own, err := LinkBinary(bin, sum, "c1")
		if err != nil || own {
			t.Fatalf("LinkBinary = %v, %v; want the link made", own, err)
		}
		check(t, sum)
	})

	t.Run("stale link", func(t *testing.T) {
		// A prebaked image's link, with the sum of the node it was baked
		// from.
		os.Remove(bin)
		if err := os.Symlink("../elsewhere/skyward", bin); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin+".sha256", []byte(strings.Repeat("cd", 32)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		own, err := LinkBinary(bin, sum, "c1")
		if err != nil || own {
			t.Fatalf("LinkBinary = %v, %v; want the link made", own, err)
		}
		check(t, sum)
	})

	upgrade := func(t *testing.T) string {
		t.Helper()
		os.Remove(bin)
		if err := os.WriteFile(bin, []byte("an upgrade"), 0o755); err != nil {
			t.Fatal(err)
		}
		upgraded := strings.Repeat("ef", 32) + "\n"
		if err := os.WriteFile(bin+".sha256", []byte(upgraded), 0o600); err != nil {
			t.Fatal(err)
		}
		return upgraded
	}

	t.Run("image's binary", func(t *testing.T) {
		// A prebaked image of a node that had a binary of its own: another
		// container's.
		upgrade(t)
		own, err := LinkBinary(bin, sum, "c2")
		if err != nil || own {
			t.Fatalf("LinkBinary = %v, %v; want the link made", own, err)
		}
		check(t, sum)
	})

	t.Run("upgraded", func(t *testing.T) {
		// Installed over the link of container c2, which then restarts.
		upgraded := upgrade(t)
		own, err := LinkBinary(bin, sum, "c2")
		if err != nil || !own {
			t.Fatalf("LinkBinary = %v, %v; want the upgrade kept", own, err)
		}
		if got, _ := os.ReadFile(bin); string(got) != "an upgrade" {
			t.Errorf("the upgrade became %q", got)
		}
		if got, _ := os.ReadFile(bin + ".sha256"); string(got) != upgraded {
			t.Errorf("the upgrade's sum became %q", got)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		other := filepath.Join(dir, "other", "skyward")
		for _, args := range [][2]string{{"not a sum", "c1"}, {sum, ""}, {sum, "a/b"}} {
			if _, err := LinkBinary(other, args[0], args[1]); err == nil {
				t.Errorf("LinkBinary with sum %q, id %q succeeded", args[0], args[1])
			}
		}
		if _, err := os.Lstat(other); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a refused link left %s: %v", other, err)
		}
	})
}
