package hclspec

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// Excludes matches the paths below an include root against an image's
// excludes, with the semantics of a .gitignore file at that root: a
// pattern without a slash matches a name at any depth ("*.pyc",
// "__pycache__"), one with a slash is anchored at the root ("build/out",
// "/dist"), "**" spans directories, a trailing slash matches directories
// only, a leading "!" includes again what an earlier pattern excluded, and
// the last matching pattern wins. An Excludes is safe for concurrent use.
type Excludes struct {
	m gitignore.Matcher
}

// NewExcludes checks every pattern (CheckExcludePattern) and compiles them.
func NewExcludes(patterns []string) (*Excludes, error) {
	ps := make([]gitignore.Pattern, 0, len(patterns))
	for _, p := range patterns {
		if err := CheckExcludePattern(p); err != nil {
			return nil, err
		}
		ps = append(ps, gitignore.ParsePattern(p, nil))
	}
	return &Excludes{m: gitignore.NewMatcher(ps)}, nil
}

// Match reports whether rel, a path relative to the include root with
// forward slashes, is excluded. The root itself ("" or ".") never is.
// isDir says whether rel is a directory. A nil Excludes excludes nothing.
func (e *Excludes) Match(rel string, isDir bool) bool {
	if e == nil || rel == "" || rel == "." {
		return false
	}
	return e.m.Match(strings.Split(rel, "/"), isDir)
}

// CheckExcludePattern returns an error saying what is wrong with an
// exclude pattern that .gitignore syntax does not accept or that could
// never match: an empty one, a comment, a malformed class ("[") or a "**"
// that is not a whole path segment.
func CheckExcludePattern(p string) error {
	body := strings.TrimPrefix(p, "!")
	body = strings.TrimRight(body, " ")
	body = strings.TrimSuffix(body, "/")
	switch {
	case strings.TrimSpace(body) == "":
		return fmt.Errorf("the exclude pattern %q is empty and would match nothing", p)
	case strings.HasPrefix(p, "#"):
		return fmt.Errorf("the exclude pattern %q is a comment in .gitignore syntax and would match nothing; write \\# for a name starting with #", p)
	}
	for _, seg := range strings.Split(strings.TrimPrefix(body, "/"), "/") {
		if seg == "**" {
			continue
		}
		if strings.Contains(seg, "**") {
			return fmt.Errorf("the exclude pattern %q has %q in %q: ** must be a whole path segment, as in **/name or dir/**", p, "**", seg)
		}
		if _, err := filepath.Match(seg, ""); errors.Is(err, filepath.ErrBadPattern) {
			return fmt.Errorf("the exclude pattern %q is malformed: %q is not a valid glob (an unclosed [ or a trailing \\)", p, seg)
		}
	}
	return nil
}
