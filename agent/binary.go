package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

const (
	// BinaryPath is where the skyward binary is installed on a node.
	BinaryPath = Root + "/bin/skyward"
	// BinarySumPath holds the installed binary's sha256 in hex. Whoever
	// installs the binary writes it, so that a controller checks the
	// installed version with one small read instead of hashing 16 MB on
	// the node.
	BinarySumPath = BinaryPath + ".sha256"
)

type sumKey struct {
	path  string
	size  int64
	mtime time.Time
}

// sumEntry is one file's sum, computed once however many ask at once.
type sumEntry struct {
	once sync.Once
	sum  string
	err  error
}

var (
	sumMu    sync.Mutex
	sumCache = map[sumKey]*sumEntry{}
)

// SumCacheDir, when set, is a directory where FileSum remembers the sums
// of files across processes, by path and the file's identity (device,
// inode, size, modification and change times): a controller's every
// apply would otherwise hash its own 40 MB binary again. Any write to the
// file changes its change time, which no one can set, so a changed file
// is always hashed anew.
var SumCacheDir string

// sumCacheTTL is how long an unused entry of SumCacheDir is kept.
const sumCacheTTL = 30 * 24 * time.Hour

// FileSum returns the hex sha256 of the file at path. Sums are remembered
// by path, size and modification time, so that a controller bringing up
// many nodes hashes its binary once, and in SumCacheDir when it is set.
func FileSum(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	key := sumKey{path, fi.Size(), fi.ModTime()}
	sumMu.Lock()
	e := sumCache[key]
	if e == nil {
		e = &sumEntry{}
		sumCache[key] = e
	}
	sumMu.Unlock()
	e.once.Do(func() { e.sum, e.err = fileSum(path, fi) })
	if e.err != nil {
		// Not remembered: the next call tries again.
		sumMu.Lock()
		if sumCache[key] == e {
			delete(sumCache, key)
		}
		sumMu.Unlock()
	}
	return e.sum, e.err
}

// fileSum hashes the file at path, whose stat is fi, or reads its sum
// from SumCacheDir.
func fileSum(path string, fi os.FileInfo) (string, error) {
	entry := ""
	if id, ok := fileIdentity(fi); ok && SumCacheDir != "" {
		if abs, err := filepath.Abs(path); err == nil {
			k := sha256.Sum256([]byte(abs + "\x00" + id))
			entry = filepath.Join(SumCacheDir, hex.EncodeToString(k[:16]))
			if b, err := os.ReadFile(entry); err == nil && isHexSum(string(b)) {
				now := time.Now()
				_ = os.Chtimes(entry, now, now)
				return string(b), nil
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	// Still the file that was hashed: remember the sum (best effort).
	if after, err := f.Stat(); entry != "" && err == nil {
		if id, ok := fileIdentity(after); ok && id == mustIdentity(fi) {
			rememberSum(entry, sum)
		}
	}
	return sum, nil
}

func mustIdentity(fi os.FileInfo) string {
	id, _ := fileIdentity(fi)
	return id
}

// rememberSum writes sum as the cache entry at path, atomically, and
// removes entries unused for sumCacheTTL.
func rememberSum(path, sum string) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	if writeFile(path, []byte(sum), 0o600) != nil {
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > sumCacheTTL {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func isHexSum(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// LinkBinary makes path (BinaryPath on a node) a symbolic link to the
// running executable, whose sha256 is sum, and records sum beside it
// (path + ".sha256"), unless path is a file of its own that was installed
// over the link in the life of the container id (an upgrade over SSH,
// followed by a restart): own then reports that path is that binary, to be
// run instead. id names one container (a new one gets a new id), so that a
// binary an image holds (a prebaked image of a node that had one) is
// replaced by the link all the same.
//
// A container node whose binary is mounted read-only from its host runs
// this as PID 1 at every start: the link points into the mount, whatever
// the image held before.
func LinkBinary(path, sum, id string) (own bool, err error) {
	if !isHexSum(sum) {
		return false, fmt.Errorf("link %s: %q is not a sha256", path, sum)
	}
	if id == "" || strings.ContainsAny(id, "\n/") {
		return false, fmt.Errorf("link %s: bad container id %q", path, id)
	}
	self, err := os.Executable()
	if err != nil {
		return false, fmt.Errorf("link %s: %w", path, err)
	}
	idPath := path + ".link-id"
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		if got, err := os.ReadFile(idPath); err == nil && string(got) == id+"\n" {
			return true, nil
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("link %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	target, err := filepath.Rel(dir, self)
	if err != nil {
		return false, fmt.Errorf("link %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("link %s: %w", path, err)
	}
	// The sum first: a link whose sum is another binary's would make a
	// controller trust a binary it did not install. The id last: until it
	// is written, the next start links again.
	if err := writeFile(path+".sha256", []byte(sum+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("link %s: %w", path, err)
	}
	tmp := path + ".link"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return false, fmt.Errorf("link %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("link %s: %w", path, err)
	}
	if err := writeFile(idPath, []byte(id+"\n"), 0o644); err != nil {
		return false, fmt.Errorf("link %s: %w", path, err)
	}
	return false, nil
}
