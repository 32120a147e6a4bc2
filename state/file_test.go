package state

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func intp(i int) *int { return &i }

// sampleState returns a state with a pool and two nodes.
func sampleState() *State {
	s := New(NewLineage())
	s.Set(&Resource{
		Address: "pool.dev", Type: "pool", Pool: "dev", Provider: "container", ID: "net-1",
		Attributes: map[string]any{
			"network":         "skyward-dev",
			"provider_config": map[string]any{"host": "unix:///var/run/docker.sock"},
		},
		Status: StatusReady,
	})
	for i, st := range []Status{StatusReady, StatusTainted} {
		s.Set(&Resource{
			Address: "pool.dev.node[" + string(rune('0'+i)) + "]", Type: "node", Pool: "dev", Index: intp(i),
			Provider: "container", ID: "c" + string(rune('0'+i)),
			Attributes: map[string]any{
				"vcpus": float64(2), "apt": []any{"git", "curl"}, "running": true,
			},
			Dependencies: []string{"pool.dev"},
			Status:       st,
		})
	}
	return s
}

// snapshot records every file in dir: content, mode and mtime.
type fileSnap struct {
	Data  string
	Mode  fs.FileMode
	MTime time.Time
}

func snapshot(t *testing.T, dir string) map[string]fileSnap {
	t.Helper()
	out := map[string]fileSnap{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		s := fileSnap{Mode: fi.Mode(), MTime: fi.ModTime()}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.Data = string(b)
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestReadMissing(t *testing.T) {
	tests := map[string]string{
		"no directory": filepath.Join(t.TempDir(), ".skyward"),
		"no file":      t.TempDir(),
	}
	for name, dir := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := (&File{Dir: dir}).Read()
			if s != nil || err != nil {
				t.Fatalf("Read() = %v, %v; want nil, nil", s, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "state.json")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Read created the state file: %v", err)
			}
		})
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	tests := map[string]*State{
		"empty":     New(NewLineage()),
		"resources": sampleState(),
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			f := &File{Dir: filepath.Join(t.TempDir(), ".skyward")}
			if err := f.Write(s); err != nil {
				t.Fatal(err)
			}
			got, err := f.Read()
			if err != nil {
				t.Fatal(err)
			}
			want := s.DeepCopy()
			if want.Resources == nil {
				want.Resources = []*Resource{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("read back (-want +got):\n%s", diff)
			}
			data, err := os.ReadFile(f.Path())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(string(data), "}\n") || !strings.Contains(string(data), "\n  \"serial\": 1,\n") {
				t.Errorf("state file is not indented JSON with a trailing newline:\n%s", data)
			}
		})
	}
}

func TestNewLineage(t *testing.T) {
	a, b := NewLineage(), NewLineage()
	if len(a) != 36 || a == b {
		t.Errorf("NewLineage() = %q, %q; want two distinct UUIDs", a, b)
	}
}

func TestWriteSerialAndBackup(t *testing.T) {
	f := &File{Dir: filepath.Join(t.TempDir(), ".skyward")}
	s := sampleState()
	s.Version = 0 // Write sets it
	var prev []byte
	for i := 1; i <= 3; i++ {
		if err := f.Write(s); err != nil {
			t.Fatal(err)
		}
		if s.Serial != uint64(i) || s.Version != FormatVersion {
			t.Fatalf("after write %d: serial %d, version %d; want %d, %d", i, s.Serial, s.Version, i, FormatVersion)
		}
		got, err := f.Read()
		if err != nil {
			t.Fatal(err)
		}
		if got.Serial != uint64(i) {
			t.Errorf("write %d: serial on disk %d", i, got.Serial)
		}
		backup, err := os.ReadFile(f.BackupPath())
		switch {
		case i == 1 && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("first write made a backup: %v", err)
		case i > 1 && err != nil:
			t.Fatal(err)
		case i > 1 && string(backup) != string(prev):
			t.Errorf("write %d: backup is not the previous state:\n%s\nwant:\n%s", i, backup, prev)
		}
		if prev, err = os.ReadFile(f.Path()); err != nil {
			t.Fatal(err)
		}
		s.Remove("pool.dev.node[1]")
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".skyward")
	f := &File{Dir: dir}
	s := New(NewLineage())
	for range 2 {
		if err := f.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]fs.FileMode{
		".skyward":          mode(t, dir),
		"state.json":        mode(t, f.Path()),
		"state.json.backup": mode(t, f.BackupPath()),
	}
	want := map[string]fs.FileMode{".skyward": 0o700, "state.json": 0o600, "state.json.backup": 0o600}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("modes (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want state.json and its backup only: %v", len(entries), entries)
	}
}

func TestReadCorrupt(t *testing.T) {
	const good = `{"version": 1, "serial": 4, "lineage": "x", "resources": []}` + "\n"
	tests := map[string]struct {
		data   string
		backup bool
		want   []string
	}{
		"syntax error": {
			data:   "{\n  \"version\": 1,\n  \"serial\": 4,,\n}",
			backup: true,
			want:   []string{"cannot be parsed", "line 3, column 15", "invalid character ','"},
		},
		"truncated": {
			data:   "{\n  \"version\": 1,\n  \"resources\": [",
			backup: true,
			want:   []string{"cannot be parsed", "unexpected end of JSON input"},
		},
		"empty file": {
			data: "",
			want: []string{"cannot be parsed"},
		},
		"wrong type": {
			data:   "{\n  \"version\": 1,\n  \"serial\": \"four\"\n}",
			backup: true,
			want:   []string{"cannot be parsed", "line 3", "serial"},
		},
		"version not a number": {
			data: `{"version": "1"}`,
			want: []string{"cannot be parsed", "version"},
		},
		"no version": {
			data:   `{"serial": 4, "resources": []}`,
			backup: true,
			want:   []string{"has no format version"},
		},
		"version zero": {
			data: `{"version": 0, "resources": []}`,
			want: []string{"invalid format version 0"},
		},
		"unknown status": {
			data:   `{"version": 1, "resources": [{"address": "pool.a", "status": "exploded"}]}`,
			backup: true,
			want:   []string{"is invalid", `resource "pool.a" has unknown status "exploded"`},
		},
		"missing status": {
			data: `{"version": 1, "resources": [{"address": "pool.a"}]}`,
			want: []string{`resource "pool.a" has unknown status ""`},
		},
		"duplicate address": {
			data: `{"version": 1, "resources": [{"address": "pool.a", "status": "ready"}, {"address": "pool.a", "status": "ready"}]}`,
			want: []string{`resource "pool.a" appears twice`},
		},
		"null resource": {
			data: `{"version": 1, "resources": [null]}`,
			want: []string{"resources[0] is null"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			f := &File{Dir: dir}
			if err := os.WriteFile(f.Path(), []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.backup {
				if err := os.WriteFile(f.BackupPath(), []byte(good), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// Old mtimes, so that a rewrite within the clock's resolution shows.
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			for _, p := range []string{f.Path(), f.BackupPath()} {
				if err := os.Chtimes(p, old, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Fatal(err)
				}
			}
			before := snapshot(t, dir)

			s, err := f.Read()
			if err == nil {
				t.Fatalf("Read() = %+v, nil; want an error", s)
			}
			msg := err.Error()
			t.Log(msg)
			want := append([]string{"state file " + f.Path()}, tc.want...)
			recovery := "the previous state is in " + f.BackupPath() + "; inspect it and copy it over state.json to recover"
			if tc.backup {
				want = append(want, recovery)
			} else if strings.Contains(msg, "backup") {
				t.Errorf("error mentions a backup that does not exist: %s", msg)
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
			if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
				t.Errorf("Read changed the directory (-before +after):\n%s", diff)
			}
		})
	}
}

func TestReadNewerVersion(t *testing.T) {
	tests := map[string]string{
		"same shape":      `{"version": 2, "serial": 1, "lineage": "x", "resources": []}`,
		"other shape":     `{"version": 7, "serial": "abc", "resources": {"pool.a": {"status": 3}}}`,
		"unknown status":  `{"version": 2, "resources": [{"address": "pool.a", "status": "sleeping"}]}`,
		"version at last": `{"resources": null, "extra": [1, 2], "version": 3}`,
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			f := &File{Dir: t.TempDir()}
			if err := os.WriteFile(f.Path(), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			var v struct{ Version int }
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatal(err)
			}
			_, err := f.Read()
			if err == nil {
				t.Fatal("Read() succeeded; want an error")
			}
			want := "state file " + f.Path() + " has format version " + string(rune('0'+v.Version)) +
				", newer than this skyward supports (1); upgrade skyward"
			if err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
		})
	}
}

func TestWriteFailureKeepsOld(t *testing.T) {
	errInjected := errors.New("injected failure")
	tests := map[string]struct {
		mutate    func(s *State)
		failState bool // rename onto state.json fails
		failBack  bool // rename onto state.json.backup fails
		want      string
	}{
		"encode": {
			mutate: func(s *State) { s.Resources[0].Attributes["bad"] = func() {} },
			want:   "write state: encode: json: unsupported type: func()",
		},
		"rename state": {
			failState: true,
			want:      "write state: injected failure",
		},
		"rename backup": {
			failBack: true,
			want:     "write state: backup: injected failure",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			f := &File{Dir: dir}
			s := sampleState()
			// Two writes, so that state.json and its backup both exist.
			for range 2 {
				if err := f.Write(s); err != nil {
					t.Fatal(err)
				}
			}
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			for _, p := range []string{f.Path(), f.BackupPath()} {
				if err := os.Chtimes(p, old, old); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, dir)
			rename = func(from, to string) error {
				if (tc.failState && to == f.Path()) || (tc.failBack && to == f.BackupPath()) {
					return errInjected
				}
				return os.Rename(from, to)
			}
			t.Cleanup(func() { rename = os.Rename })

			s.Set(&Resource{Address: "pool.zzz", Pool: "zzz", Type: "pool", Status: StatusReady,
				Attributes: map[string]any{}})
			if tc.mutate != nil {
				tc.mutate(s)
			}
			err := f.Write(s)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Write() error = %v; want %q", err, tc.want)
			}
			if s.Serial != 2 {
				t.Errorf("serial after failed write = %d; want 2", s.Serial)
			}
			after := snapshot(t, dir)
			// Temp files come and go, so the directory's own mtime moves.
			delete(before, ".")
			delete(after, ".")
			if tc.failState {
				// The backup was refreshed before the failure; it holds
				// the same previous state, which state.json still is.
				if after["state.json.backup"].Data != before["state.json"].Data {
					t.Errorf("backup is not the current state.json")
				}
				before["state.json.backup"] = after["state.json.backup"]
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("failed Write changed the directory (-before +after):\n%s", diff)
			}
		})
	}
}

func TestWriteDirSyncFailure(t *testing.T) {
	f := &File{Dir: t.TempDir()}
	s := New(NewLineage())
	syncDir = func(string) error { return errors.New("injected sync failure") }
	t.Cleanup(func() { syncDir = syncDirectory })
	err := f.Write(s)
	if err == nil || !strings.Contains(err.Error(), "injected sync failure") {
		t.Fatalf("Write() error = %v; want the sync failure", err)
	}
	// The rename happened: the file and s agree on the new serial.
	got, rerr := f.Read()
	if rerr != nil {
		t.Fatal(rerr)
	}
	if got.Serial != 1 || s.Serial != 1 {
		t.Errorf("serial on disk %d, in memory %d; want 1 and 1", got.Serial, s.Serial)
	}
}

func TestWriteNil(t *testing.T) {
	tests := map[string]struct {
		f    *File
		s    *State
		want string
	}{
		"nil state": {f: &File{Dir: t.TempDir()}, s: nil, want: "state: Write of a nil state"},
		"no dir":    {f: &File{}, s: New("x"), want: "state: File.Dir is empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tc.f.Write(tc.s); err == nil || err.Error() != tc.want {
				t.Errorf("Write() error = %v; want %q", err, tc.want)
			}
		})
	}
}
