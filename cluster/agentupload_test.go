package cluster

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyward-sh/skyward/internal/hostnet"
)

func TestNearby(t *testing.T) {
	addrs := func() ([]net.Addr, error) { return hostnet.Addrs("127.0.0.1/8", "172.28.0.1/16"), nil }
	tests := map[string]struct {
		ep   Endpoint
		want bool
	}{
		"published container port": {Endpoint{Host: "127.0.0.1", Port: 32768}, true},
		"localhost":                {Endpoint{Host: "localhost"}, true},
		"ipv6 loopback":            {Endpoint{Host: "::1"}, true},
		"container on a bridge":    {Endpoint{Host: "172.28.0.3", Port: 22}, true},
		"private address":          {Endpoint{Host: "10.0.3.7"}, false},
		"public name":              {Endpoint{Host: "ec2-3-4-5-6.compute.amazonaws.com"}, false},
		"loopback through a proxy": {Endpoint{Host: "127.0.0.1", ProxyCommand: "nc %h %p"}, false},
		"bridge through a proxy":   {Endpoint{Host: "172.28.0.3", ProxyCommand: "nc %h %p"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.ep.nearbyOn(addrs); got != tc.want {
				t.Errorf("nearby() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAgentBody: the body is the binary, or compresses it and
// decompresses to it; either is read once per sum.
func TestAgentBody(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "skyward")
	content := strings.Repeat("a binary compresses well enough. ", 1<<14)
	if err := os.WriteFile(bin, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	const sum = "test-sum-of-this-binary"
	plain, err := agentBody(bin, sum, false)
	if err != nil || string(plain) != content {
		t.Fatalf("plain body: %d bytes (%v), want the %d of the binary", len(plain), err, len(content))
	}
	data, err := agentBody(bin, sum, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) >= len(content) {
		t.Errorf("compressed %d bytes to %d", len(content), len(data))
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || string(got) != content {
		t.Fatalf("decompressed %d bytes (%v), want the %d of the binary", len(got), err, len(content))
	}
	// The same sum is served from memory, even once the file is gone.
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	for _, gz := range []bool{false, true} {
		again, err := agentBody(bin, sum, gz)
		if want := map[bool][]byte{false: plain, true: data}[gz]; err != nil || !bytes.Equal(again, want) {
			t.Errorf("second call (gz %v): %d bytes, %v", gz, len(again), err)
		}
	}
	if _, err := agentBody(bin, "another-sum", false); err == nil {
		t.Error("a sum not read before was served without its file")
	}
}

func TestUploadAgentScript(t *testing.T) {
	plain, gz := uploadAgentScript("abc", false), uploadAgentScript("abc", true)
	if !strings.Contains(plain, "; cat > ") || strings.Contains(plain, "gzip") {
		t.Errorf("plain upload: %s", plain)
	}
	if !strings.Contains(gz, "; gzip -dc > ") {
		t.Errorf("compressed upload: %s", gz)
	}
	for _, s := range []string{plain, gz} {
		if !strings.Contains(s, `"$got" != abc`) {
			t.Errorf("the upload does not check the sum of what it wrote: %s", s)
		}
	}
}

// TestSumScript runs the sum of the upload with OpenSSL, with a node's
// OpenSSL that fails, and with none (coreutils only).
func TestSumScript(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "binary")
	data := bytes.Repeat([]byte("skyward"), 1000)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x\n", sha256.Sum256(data))
	// A PATH of the tools the script may use, from this machine.
	bin := func(t *testing.T, tools ...string) string {
		d := t.TempDir()
		for _, tool := range tools {
			p, err := exec.LookPath(tool)
			if err != nil {
				t.Fatalf("%s: %v", tool, err)
			}
			if err := os.Symlink(p, filepath.Join(d, tool)); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	fake := func(t *testing.T, script string) string {
		d := bin(t, "sha256sum", "cut", "sh")
		if err := os.WriteFile(filepath.Join(d, "openssl"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := map[string]string{
		"no openssl":      bin(t, "sha256sum"),
		"openssl output":  fake(t, `echo "`+strings.TrimSpace(want)+` *$4"`),
		"openssl failing": fake(t, "echo broken >&2; exit 1"),
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		tests["this machine's openssl"] = bin(t, "openssl", "sha256sum")
	}
	// Neither tool: no sum, which the upload then reports as a mismatch.
	cmd := exec.Command("/bin/sh", "-c", "set -e; "+sumScript(file, "got")+`; echo "[$got]"`)
	cmd.Env = []string{"PATH=" + bin(t)}
	if out, err := cmd.Output(); err != nil || string(out) != "[]\n" {
		t.Errorf("without openssl and sha256sum: %q (%v), want an empty sum", out, err)
	}
	for name, path := range tests {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", sumScript(file, "got")+`; echo "$got"`)
			cmd.Env = []string{"PATH=" + path}
			out, err := cmd.Output()
			if err != nil || string(out) != want {
				t.Errorf("sum %q (%v), want %q", out, err, want)
			}
		})
	}
}

// TestArchCheckScript runs the check that InstallAgent puts before the
// upload on this machine: it passes for this machine's `uname -m` and
// fails, naming it, for another.
func TestArchCheckScript(t *testing.T) {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatalf("uname: %v", err)
	}
	here := strings.TrimSpace(string(out))
	other := "x86_64"
	if here == "x86_64" {
		other = "aarch64"
	}
	if out, err := exec.Command("sh", "-c", archCheckScript(here)+"echo ok").CombinedOutput(); err != nil || string(out) != "ok\n" {
		t.Errorf("on its own machine: %q, %v", out, err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("sh", "-c", archCheckScript(other)+"echo ok")
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != archMismatchExit || len(out) != 0 {
		t.Fatalf("on another machine: %q, %v; want exit %d before anything else", out, err, archMismatchExit)
	}
	if got := lastLine(stderr.String()); got != here {
		t.Errorf("the check reported the machine %q, want %q", got, here)
	}
}

// On a guarded endpoint a command runs under one guard: a plain one as
// the login user, one through Sudo as root only, however it is then run;
// a command of the user's own that calls sudo keeps its guard.
func TestSudoGuard(t *testing.T) {
	c := &Client{ep: Endpoint{Address: "n", User: "ubuntu", Guard: true}}
	guards := func(cmd string) int { return strings.Count(cmd, " agent guard -- ") }
	plain := c.guard("echo hi")
	if guards(plain) != 1 {
		t.Errorf("plain command: %s", plain)
	}
	sudo := c.Sudo("echo hi")
	if guards(sudo) != 1 || !strings.HasPrefix(sudo, "sudo -n sh -c ") {
		t.Errorf("sudo command: %s", sudo)
	}
	if got := c.guard(sudo); got != sudo {
		t.Errorf("a command Sudo guarded is guarded again: %s", got)
	}
	own := "sudo -n sh -c 'sleep 100'"
	if got := c.guard(own); guards(got) != 1 {
		t.Errorf("the user's own sudo command is not guarded: %s", got)
	}
	root := &Client{ep: Endpoint{Address: "n", User: "root", Guard: true}}
	if got := root.guard(root.Sudo("echo hi")); guards(got) != 1 {
		t.Errorf("root's command: %s", got)
	}
	// The commands are sh: without the binary they run as they are.
	for _, cmd := range []string{plain, sudo, c.guard(own)} {
		out, err := exec.Command("sh", "-n", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Errorf("sh -n %s: %v\n%s", cmd, err, out)
		}
	}
}
