package agent

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type setupEntry struct {
	name, link, data string
	typ              byte
	mode             int64
}

func setupArchive(t *testing.T, entries ...setupEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.data))}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestSetupFromArchive(t *testing.T) {
	root := t.TempDir()
	err := SetupFromArchive(root, setupArchive(t,
		setupEntry{name: "opt/skyward/", typ: tar.TypeDir, mode: 0o755},
		setupEntry{name: "opt/skyward/bin/", typ: tar.TypeDir, mode: 0o755},
		setupEntry{name: "opt/skyward/bin/skyward", typ: tar.TypeSymlink, link: "../seed/skyward", mode: 0o777},
		setupEntry{name: "opt/skyward/ssh_host_ed25519_key", typ: tar.TypeReg, data: "secret", mode: 0o600},
		setupEntry{name: "opt/skyward/bin/skyward.sha256", typ: tar.TypeReg, data: "abc\n", mode: 0o600},
	))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(root, "opt/skyward/ssh_host_ed25519_key")
	if b, err := os.ReadFile(key); err != nil || string(b) != "secret" {
		t.Errorf("host key: %q, %v", b, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("host key mode: %v, %v", fi.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(root, "opt/skyward/bin/skyward")); err != nil || l != "../seed/skyward" {
		t.Errorf("agent link: %q, %v", l, err)
	}
	// Written again (a second start that got the files anyway): replaced.
	if err := SetupFromArchive(root, setupArchive(t,
		setupEntry{name: "opt/skyward/bin/skyward", typ: tar.TypeSymlink, link: "../seed/other", mode: 0o777},
		setupEntry{name: "opt/skyward/ssh_host_ed25519_key", typ: tar.TypeReg, data: "new", mode: 0o600},
	)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(key); string(b) != "new" {
		t.Errorf("host key after a second archive: %q", b)
	}

	bad := map[string]setupEntry{
		"outside":           {name: "etc/passwd", typ: tar.TypeReg, data: "x", mode: 0o644},
		"climbing out":      {name: "opt/skyward/../../etc/passwd", typ: tar.TypeReg, data: "x", mode: 0o644},
		"absolute":          {name: "/etc/passwd", typ: tar.TypeReg, data: "x", mode: 0o644},
		"prefix look-alike": {name: "opt/skyward-evil/x", typ: tar.TypeReg, data: "x", mode: 0o644},
		"device":            {name: "opt/skyward/dev", typ: tar.TypeChar, mode: 0o644},
	}
	// A file written through a link of the archive would land outside.
	dir := t.TempDir()
	if err := SetupFromArchive(dir, setupArchive(t,
		setupEntry{name: "opt/skyward/out", typ: tar.TypeSymlink, link: filepath.Join(dir, "etc"), mode: 0o777},
		setupEntry{name: "opt/skyward/out/passwd", typ: tar.TypeReg, data: "x", mode: 0o644},
	)); err == nil {
		t.Error("a file below a link of the archive was accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "etc")); !os.IsNotExist(err) {
		t.Errorf("something was written through the link: %v", err)
	}

	for name, e := range bad {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			err := SetupFromArchive(dir, setupArchive(t, e))
			if err == nil {
				t.Fatalf("%s was accepted", e.name)
			}
			if _, serr := os.Stat(filepath.Join(dir, "etc")); !os.IsNotExist(serr) {
				t.Errorf("something was written outside opt/skyward: %v", serr)
			}
		})
	}
	if err := SetupFromArchive(t.TempDir(), strings.NewReader("")); err == nil {
		t.Error("an empty standard input was accepted")
	}
}
