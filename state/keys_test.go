package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeysWriteRead(t *testing.T) {
	tests := map[string]struct {
		name string
		data []byte
	}{
		"top level":    {name: "token", data: []byte("s3cret\n")},
		"subdirectory": {name: "pool/dev/id_ed25519", data: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")},
		"empty":        {name: "empty", data: []byte{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), ".skyward")
			k := (&File{Dir: root}).Keys()
			if err := k.Write(tc.name, []byte("old")); err != nil {
				t.Fatal(err)
			}
			if err := k.Write(tc.name, tc.data); err != nil {
				t.Fatal(err)
			}
			got, err := k.Read(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(tc.data), string(got)); diff != "" {
				t.Errorf("read back (-want +got):\n%s", diff)
			}
			// Every directory from .skyward down is 0700, the file 0600.
			p := filepath.Join(k.Dir, filepath.FromSlash(tc.name))
			if m := mode(t, p); m != 0o600 {
				t.Errorf("%s: mode %v, want 0600", p, m)
			}
			for d := filepath.Dir(p); strings.HasPrefix(d, root); d = filepath.Dir(d) {
				if m := mode(t, d); m != 0o700 {
					t.Errorf("%s: mode %v, want 0700", d, m)
				}
			}
			entries, err := os.ReadDir(filepath.Dir(p))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("%s holds %v; want only the key", filepath.Dir(p), entries)
			}
		})
	}
}

func TestKeysInvalidNames(t *testing.T) {
	names := []string{"", "..", "../x", "a/../../x", "a/../b", "/etc/passwd", "a//b", "a/", "./a", "a/.", `a\b`, "a\x00b"}
	k := &Keys{Dir: t.TempDir()}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if err := k.Write(name, []byte("x")); err == nil {
				t.Errorf("Write(%q) succeeded", name)
			}
			if _, err := k.Read(name); err == nil || errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Read(%q) error = %v; want an invalid name", name, err)
			}
			if err := k.Remove(name); err == nil {
				t.Errorf("Remove(%q) succeeded", name)
			}
			// RemoveAll takes "dir/" for "dir".
			if err := k.RemoveAll(name); err == nil && name != "a/" {
				t.Errorf("RemoveAll(%q) succeeded", name)
			}
		})
	}
	entries, _ := os.ReadDir(k.Dir)
	if len(entries) != 0 {
		t.Errorf("invalid names wrote %v", entries)
	}
}

func TestKeysReadMissing(t *testing.T) {
	tests := map[string]string{
		"no directory": filepath.Join(t.TempDir(), "keys"),
		"no file":      t.TempDir(),
	}
	for name, dir := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := (&Keys{Dir: dir}).Read("pool/dev/id_ed25519")
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Read error = %v; want fs.ErrNotExist", err)
			}
		})
	}
}

func TestKeysRemove(t *testing.T) {
	tests := map[string]struct {
		remove    func(k *Keys) error
		wantFiles []string
	}{
		"one key": {
			remove:    func(k *Keys) error { return k.Remove("pool/dev/id_ed25519") },
			wantFiles: []string{"pool/dev/token", "pool/prod/id_ed25519", "token"},
		},
		"last key in directory": {
			remove:    func(k *Keys) error { return k.Remove("pool/prod/id_ed25519") },
			wantFiles: []string{"pool/dev/id_ed25519", "pool/dev/token", "token"},
		},
		"missing key": {
			remove:    func(k *Keys) error { return k.Remove("pool/none/id_ed25519") },
			wantFiles: []string{"pool/dev/id_ed25519", "pool/dev/token", "pool/prod/id_ed25519", "token"},
		},
		"prefix": {
			remove:    func(k *Keys) error { return k.RemoveAll("pool/dev") },
			wantFiles: []string{"pool/prod/id_ed25519", "token"},
		},
		"prefix with slash": {
			remove:    func(k *Keys) error { return k.RemoveAll("pool/dev/") },
			wantFiles: []string{"pool/prod/id_ed25519", "token"},
		},
		"missing prefix": {
			remove:    func(k *Keys) error { return k.RemoveAll("pool/none") },
			wantFiles: []string{"pool/dev/id_ed25519", "pool/dev/token", "pool/prod/id_ed25519", "token"},
		},
		"everything under pool": {
			remove:    func(k *Keys) error { return k.RemoveAll("pool") },
			wantFiles: []string{"token"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			k := &Keys{Dir: filepath.Join(t.TempDir(), "keys")}
			for _, n := range []string{"pool/dev/id_ed25519", "pool/dev/token", "pool/prod/id_ed25519", "token"} {
				if err := k.Write(n, []byte(n)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.remove(k); err != nil {
				t.Fatal(err)
			}
			var files, dirs []string
			filepath.WalkDir(k.Dir, func(p string, d fs.DirEntry, err error) error {
				rel, _ := filepath.Rel(k.Dir, p)
				if d.IsDir() {
					dirs = append(dirs, filepath.ToSlash(rel))
				} else {
					files = append(files, filepath.ToSlash(rel))
				}
				return err
			})
			if diff := cmp.Diff(tc.wantFiles, files); diff != "" {
				t.Errorf("files left (-want +got):\n%s", diff)
			}
			// No empty directories are left behind, and keys/ itself stays.
			for _, d := range dirs {
				if entries, _ := os.ReadDir(filepath.Join(k.Dir, d)); len(entries) == 0 {
					t.Errorf("empty directory %s left behind", d)
				}
			}
		})
	}
}
