package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// maxBinaryMB bounds the size of the release binary (`make build`), which
// is copied to every node. It is 42 MB today: 17 MB of skyward, 22 MB of
// the embedded collections store and 3 MB of the AWS SDK calls it makes.
// The store's dependencies make the linker keep every exported method of
// any type that can reach an interface, so an SDK client held as such
// (rather than as the functions providers/aws and state hold) adds its
// every operation: 30 MB for EC2's.
const maxBinaryMB = 48

func TestBinarySize(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("builds the release binary")
	}
	bin := filepath.Join(t.TempDir(), "skyward")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if mb := float64(fi.Size()) / (1 << 20); mb > maxBinaryMB {
		t.Errorf("the release binary is %.1f MB, more than %d MB: every node gets a copy", mb, maxBinaryMB)
	}
}
