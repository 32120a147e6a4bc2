// Package fileset walks the files an image's includes (and local pip
// items) send to a node. The planner hashes exactly what the bootstrap
// uploads because both walk with Walk.
package fileset

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Walk calls fn for root and every file and directory below it, in lexical
// order. A root that is a symlink is followed (the include names what it
// points to); symlinks below the root are reported as links, not followed.
// Names below the root whose base name matches one of excludes (path.Match
// patterns) are left out, with everything under them. rel is
// base(root)/path-below-root with forward slashes; info is from Lstat (for
// the root, from Stat); full is the path to read.
func Walk(root string, excludes []string, fn func(rel string, info fs.FileInfo, full string) error) error {
	src, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	name := filepath.Base(root)
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != src && Excluded(excludes, d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sub, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return fn(path.Join(name, filepath.ToSlash(sub)), info, p)
	})
}

// Excluded reports whether a base name matches one of the patterns.
func Excluded(patterns []string, base string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, base); ok {
			return true
		}
	}
	return false
}
