// Package fileset walks the files an image's includes (and local pip
// items) send to a node. The planner hashes exactly what the bootstrap
// uploads because both walk with Walk.
package fileset

import (
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Matcher says which paths below an include's root to leave out: rel is
// slash-separated and relative to the root. A nil Matcher leaves out
// nothing.
type Matcher interface {
	Match(rel string, isDir bool) bool
}

// DataDir is skyward's own directory in a configuration's directory: the
// state, the keys, the lock.
const DataDir = ".skyward"

// planFileMark begins every plan file (planner.WritePlanFile); a test in
// planner keeps the two in step.
const planFileMark = `{
  "format": "skyward-plan"`

// Walk calls fn for root and every file and directory below it, in lexical
// order, leaving out, whatever the patterns, every directory named DataDir
// and every plan file, which hold keys and secrets. A root that is a symlink is followed (the include names what it
// points to); symlinks below the root are reported as links, not followed.
// Paths below the root that exclude matches are left out, with everything
// under them. rel is base(root)/path-below-root with forward slashes; info
// is from Lstat (for the root, from Stat); full is the path to read.
func Walk(root string, exclude Matcher, fn func(rel string, info fs.FileInfo, full string) error) error {
	src, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	name := filepath.Base(root)
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		sub, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		sub = filepath.ToSlash(sub)
		if d.IsDir() && d.Name() == DataDir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && isPlanFile(p) {
			return nil
		}
		if p != src && exclude != nil && exclude.Match(sub, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		return fn(path.Join(name, sub), info, p)
	})
}

// isPlanFile reports whether the file at p begins as a plan file does.
func isPlanFile(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(planFileMark))
	n, _ := io.ReadFull(f, buf)
	return string(buf[:n]) == planFileMark
}
