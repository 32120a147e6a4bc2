package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
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

var (
	sumMu    sync.Mutex
	sumCache = map[sumKey]string{}
)

// FileSum returns the hex sha256 of the file at path. Sums are remembered
// by path, size and modification time, so that a controller bringing up
// many nodes hashes its binary once.
func FileSum(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	key := sumKey{path, fi.Size(), fi.ModTime()}
	sumMu.Lock()
	sum, ok := sumCache[key]
	sumMu.Unlock()
	if ok {
		return sum, nil
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
	sum = hex.EncodeToString(h.Sum(nil))
	sumMu.Lock()
	sumCache[key] = sum
	sumMu.Unlock()
	return sum, nil
}
