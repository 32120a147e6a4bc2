package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/uuid"
)

// File names inside the .skyward directory.
const (
	stateName    = "state.json"
	backupName   = "state.json.backup"
	lockName     = "state.lock"
	lockInfoName = "state.lock.info"
	keysName     = "keys"
)

// File is the state store in a .skyward directory: state.json, its backup
// state.json.backup, the lock state.lock and the secrets under keys/.
//
// A File holds no open handles; its methods may be called from several
// goroutines, but concurrent Writes must be serialized by the caller (hold
// the Lock).
type File struct {
	// Dir is the .skyward directory. It is created by Write and Lock when
	// missing.
	Dir string
}

// NewLineage returns a fresh lineage (a random UUID) for a state created
// with New.
func NewLineage() string {
	return uuid.NewString()
}

// Path returns the path of the state file, Dir/state.json.
func (f *File) Path() string { return filepath.Join(f.Dir, stateName) }

// BackupPath returns the path of the previous state, Dir/state.json.backup.
func (f *File) BackupPath() string { return filepath.Join(f.Dir, backupName) }

// LockPath returns the path of the lock file, Dir/state.lock.
func (f *File) LockPath() string { return filepath.Join(f.Dir, lockName) }

// Keys returns the secrets store in Dir/keys.
func (f *File) Keys() *Keys { return &Keys{Dir: filepath.Join(f.Dir, keysName)} }

// Read loads the state file. It returns (nil, nil) when there is none.
//
// It reads only state.json and writes nothing: a file that cannot be parsed
// is an error naming the file and the position of the fault, and pointing at
// state.json.backup when one exists; it never falls back to the backup by
// itself. A file written by a newer format (version above FormatVersion) and
// a resource with an unknown status are errors too.
//
// Attribute values come back as JSON decoding gives them: float64 numbers,
// []any and map[string]any.
func (f *File) Read() (*State, error) {
	if f.Dir == "" {
		return nil, errors.New("state: File.Dir is empty")
	}
	path := f.Path()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}

	// The version alone first: a newer format may change the shape of
	// everything else, and its user needs "upgrade", not a parse error.
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, f.parseError(data, err)
	}
	switch {
	case head.Version == nil:
		return nil, f.corrupt(fmt.Errorf("state file %s has no format version", path))
	case *head.Version > FormatVersion:
		return nil, fmt.Errorf("state file %s has format version %d, newer than this skyward supports (%d); upgrade skyward",
			path, *head.Version, FormatVersion)
	case *head.Version < 1:
		return nil, f.corrupt(fmt.Errorf("state file %s has invalid format version %d", path, *head.Version))
	}

	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, f.parseError(data, err)
	}
	if err := s.validate(); err != nil {
		return nil, f.corrupt(fmt.Errorf("state file %s is invalid: %w", path, err))
	}
	return &s, nil
}

// Validate checks what decoding cannot: every resource present, addressed
// once, with a known status. Read does this; a state from elsewhere (a
// saved plan's prior state) is checked with it.
func (s *State) Validate() error { return s.validate() }

func (s *State) validate() error {
	seen := make(map[string]bool, len(s.Resources))
	for i, r := range s.Resources {
		switch {
		case r == nil:
			return fmt.Errorf("resources[%d] is null", i)
		case r.Address == "":
			return fmt.Errorf("resources[%d] has no address", i)
		case seen[r.Address]:
			return fmt.Errorf("resource %q appears twice", r.Address)
		case !r.Status.Valid():
			return fmt.Errorf("resource %q has unknown status %q", r.Address, r.Status)
		}
		seen[r.Address] = true
	}
	return nil
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusReady, StatusTainted, StatusCreating:
		return true
	}
	return false
}

// parseError describes a JSON decoding failure with its line and column.
func (f *File) parseError(data []byte, err error) error {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read, the faulty one included.
		off = max(syn.Offset-1, 0)
	case errors.As(err, &typ):
		off = typ.Offset
	}
	where := ""
	if off >= 0 {
		line, col := position(data, off)
		where = fmt.Sprintf(" at line %d, column %d (offset %d)", line, col, off)
	}
	return f.corrupt(fmt.Errorf("state file %s cannot be parsed%s: %w", f.Path(), where, err))
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// corruptError is a state file that cannot be used as it is, with the way
// to recover when a backup exists.
type corruptError struct {
	err    error
	backup string // empty when there is no backup
}

func (e *corruptError) Error() string {
	if e.backup == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("%v; the previous state is in %s; inspect it and copy it over %s to recover",
		e.err, e.backup, stateName)
}

func (e *corruptError) Unwrap() error { return e.err }

func (f *File) corrupt(err error) error {
	e := &corruptError{err: err}
	if fi, statErr := os.Stat(f.BackupPath()); statErr == nil && fi.Mode().IsRegular() {
		e.backup = f.BackupPath()
	}
	return e
}

// Write saves s as the new state file. It raises s.Serial by one and sets
// s.Version to FormatVersion; the lineage is the caller's. The current state
// file, if any, is first copied to state.json.backup.
//
// Both files are written atomically with mode 0600 and Dir is created with
// mode 0700 when missing. On error the old state.json is untouched and s is
// unchanged. The one exception is a failure to sync the directory after the
// rename: the new file is then in place, s keeps its new serial, and the
// error is still returned because durability is not guaranteed.
//
// Write does not take the lock; callers hold it.
func (f *File) Write(s *State) error {
	if f.Dir == "" {
		return errors.New("state: File.Dir is empty")
	}
	if s == nil {
		return errors.New("state: Write of a nil state")
	}
	out, data, err := encodeNext(s)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	old, err := os.ReadFile(f.Path())
	switch {
	case err == nil:
		if err := writeAtomic(f.BackupPath(), old); err != nil {
			return fmt.Errorf("write state: backup: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write state: backup: %w", err)
	}
	if err := writeAtomic(f.Path(), data); err != nil {
		var ds *dirSyncError
		if errors.As(err, &ds) {
			s.Serial, s.Version = out.Serial, out.Version
		}
		return fmt.Errorf("write state: %w", err)
	}
	s.Serial, s.Version = out.Serial, out.Version
	return nil
}

// Hooks replaced by tests to inject failures.
var (
	rename  = os.Rename
	syncDir = syncDirectory
)

// dirSyncError is a failure after the rename: the new content is in place.
type dirSyncError struct{ err error }

func (e *dirSyncError) Error() string { return e.err.Error() }
func (e *dirSyncError) Unwrap() error { return e.err }

// writeAtomic replaces path with data, mode 0600: temp file in the same
// directory, fsync, rename, fsync of the directory. On failure before the
// rename, path is untouched and the temp file is removed.
func writeAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = rename(tmp.Name(), path); err != nil {
		return err
	}
	if serr := syncDir(dir); serr != nil {
		return &dirSyncError{fmt.Errorf("sync %s: %w", dir, serr)}
	}
	return nil
}

// syncDirectory makes a rename in dir durable.
func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// encodeNext returns the state that writing s stores (its serial raised,
// this build's format version) and its encoding.
func encodeNext(s *State) (*State, []byte, error) {
	out := *s
	out.Serial = s.Serial + 1
	out.Version = FormatVersion
	if out.Resources == nil {
		// "resources": [] reads better than null and decodes the same.
		out.Resources = []*Resource{}
	}
	data, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("write state: encode: %w", err)
	}
	return &out, append(data, '\n'), nil
}
