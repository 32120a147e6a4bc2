package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Keys stores secrets (SSH private keys, cluster tokens) as files under
// Dir, normally .skyward/keys. Directories are created 0700 and files 0600,
// each written atomically. Secrets never go into State or plan output; state
// refers to them by name.
//
// A name is a slash-separated relative path ("pool/dev/id_ed25519"); empty
// elements, "." and ".." are refused, so a name can never leave Dir. Methods
// may be called from several goroutines for different names.
type Keys struct {
	// Dir is the directory holding the secrets.
	Dir string
}

// path validates name and returns its file path.
func (k *Keys) path(name string) (string, error) {
	if k.Dir == "" {
		return "", errors.New("state: Keys.Dir is empty")
	}
	if name == "" {
		return "", errors.New("key name is empty")
	}
	for _, el := range strings.Split(name, "/") {
		switch {
		case el == "", el == ".", el == "..":
			return "", fmt.Errorf("invalid key name %q: want a relative path without empty, \".\" or \"..\" elements", name)
		case strings.ContainsAny(el, "\\\x00"):
			return "", fmt.Errorf("invalid key name %q: backslash and NUL are not allowed", name)
		}
	}
	return filepath.Join(k.Dir, filepath.FromSlash(name)), nil
}

// Write stores data under name, replacing any previous value atomically.
// Missing directories are created with mode 0700; the file has mode 0600.
func (k *Keys) Write(name string, data []byte) error {
	p, err := k.path(name)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("write key %s: %w", name, err)
	}
	if err := writeAtomic(p, data); err != nil {
		return fmt.Errorf("write key %s: %w", name, err)
	}
	return nil
}

// Read returns the secret stored under name. A missing secret is an error
// that wraps fs.ErrNotExist.
func (k *Keys) Read(name string) ([]byte, error) {
	p, err := k.path(name)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read key %s: not found in %s: %w", name, k.Dir, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", name, err)
	}
	return data, nil
}

// Remove deletes the secret stored under name, and the directories that
// this leaves empty below Dir. A missing secret is not an error.
func (k *Keys) Remove(name string) error {
	p, err := k.path(name)
	if err != nil {
		return fmt.Errorf("remove key: %w", err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove key %s: %w", name, err)
	}
	k.pruneParents(p)
	return nil
}

// RemoveAll deletes the subdirectory prefix and every secret under it (or
// the single secret named prefix). A missing prefix is not an error; an
// empty prefix is refused rather than taken as "everything".
func (k *Keys) RemoveAll(prefix string) error {
	p, err := k.path(strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return fmt.Errorf("remove keys: %w", err)
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove keys %s: %w", prefix, err)
	}
	k.pruneParents(p)
	return nil
}

// pruneParents removes the directories between p and Dir that are empty,
// so removed pools leave no empty folders behind. Failures are ignored: a
// directory that is not empty is simply kept.
func (k *Keys) pruneParents(p string) {
	root := filepath.Clean(k.Dir)
	for d := filepath.Dir(p); d != root && strings.HasPrefix(d, root+string(filepath.Separator)); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			return
		}
	}
}

// List returns the names of every secret under Dir, sorted; none when Dir
// does not exist.
func (k *Keys) List() ([]string, error) {
	if k.Dir == "" {
		return nil, errors.New("state: Keys.Dir is empty")
	}
	var names []string
	err := filepath.WalkDir(k.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == k.Dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			rel, err := filepath.Rel(k.Dir, p)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	sort.Strings(names)
	return names, nil
}
