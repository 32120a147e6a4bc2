package cli

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/skyward-sh/skyward/hclspec"
)

//go:embed example.sky.hcl
var exampleConfig []byte

func runInit(m *Meta, args []string) error {
	fs := newFlagSet("init")
	migrate := fs.Bool("migrate-state", false, "")
	reconfigure := fs.Bool("reconfigure", false, "")
	lockTimeout := fs.Duration("lock-timeout", 0, "")
	if _, _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *migrate && *reconfigure {
		return fmt.Errorf("init: -migrate-state and -reconfigure exclude each other")
	}
	if err := os.MkdirAll(filepath.Join(m.Dir, dataDir), 0o700); err != nil {
		return err
	}
	matches, _ := filepath.Glob(filepath.Join(m.Dir, "*.sky.hcl"))
	if len(matches) == 0 {
		path := filepath.Join(m.Dir, "main.sky.hcl")
		if err := os.WriteFile(path, exampleConfig, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "Wrote an example configuration to %s.\n", "main.sky.hcl")
	}
	cfg, err := m.loadConfig(nil, nil)
	if err != nil {
		return err
	}
	if err := m.initBackend(cfg, *migrate, *reconfigure, *lockTimeout); err != nil {
		return err
	}
	st, err := m.readState()
	if err != nil {
		return err
	}
	provs, err := m.buildProviders(providerConfigs(cfg, st))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(m.Ctx, 15*time.Second)
	defer cancel()
	for _, addr := range sortedAddrs(provs) {
		if err := provs[addr].Check(ctx); err != nil {
			return fmt.Errorf("provider %s: %w", addr, err)
		}
		fmt.Fprintf(m.Stdout, "- provider %s: reachable\n", addr)
	}
	fmt.Fprintln(m.Stdout, "\nSkyward has been successfully initialized! Run skyward plan to see what apply would create.")
	return nil
}

func runValidate(m *Meta, args []string) error {
	fs := newFlagSet("validate")
	jsonOut := fs.Bool("json", false, "")
	var vars varFlags
	vars.register(fs)
	if _, _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, diags := hclspec.Load(m.Dir, hclspec.LoadOptions{
		Vars: vars.vars, VarFiles: vars.files, Environ: os.Environ(), ProviderSchemas: m.Registry.Schemas(),
	})
	var files map[string]*hcl.File
	if cfg != nil {
		files = cfg.Files
	}
	if *jsonOut {
		if err := writeJSON(m.Stdout, hclspec.ValidateJSON(diags, files)); err != nil {
			return err
		}
		if diags.HasErrors() {
			return errSilent
		}
		return nil
	}
	if len(diags) > 0 {
		m.printDiags(files, diags)
	}
	if diags.HasErrors() {
		return errSilent
	}
	fmt.Fprintln(m.Stdout, "Success! The configuration is valid.")
	return nil
}

func runFmt(m *Meta, args []string) error {
	fset := newFlagSet("fmt")
	check := fset.Bool("check", false, "")
	diff := fset.Bool("diff", false, "")
	recursive := fset.Bool("recursive", false, "")
	list := fset.Bool("list", true, "")
	write := fset.Bool("write", true, "")
	pos, _, err := parseArgs(fset, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		pos = []string{"."}
	}
	var files []string
	for _, p := range pos {
		full := p
		if !filepath.IsAbs(full) {
			full = filepath.Join(m.Dir, p)
		}
		st, err := os.Stat(full)
		if err != nil {
			return fmt.Errorf("fmt: %w", err)
		}
		if !st.IsDir() {
			files = append(files, full)
			continue
		}
		err = filepath.WalkDir(full, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != full && (!*recursive || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), hclspec.FileSuffix) || strings.HasSuffix(d.Name(), hclspec.TestFileSuffix) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	changed := false
	var bad bool
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		out, diags := hclspec.Format(src, f)
		if diags.HasErrors() {
			m.printDiags(map[string]*hcl.File{f: {Bytes: src}}, diags)
			bad = true
			continue
		}
		if bytes.Equal(src, out) {
			continue
		}
		changed = true
		rel, err := filepath.Rel(m.Dir, f)
		if err != nil {
			rel = f
		}
		if *list {
			fmt.Fprintln(m.Stdout, rel)
		}
		if *diff {
			fmt.Fprint(m.Stdout, unifiedDiff(rel, string(src), string(out)))
		}
		if !*check && *write {
			if err := os.WriteFile(f, out, 0o644); err != nil {
				return err
			}
		}
	}
	if bad {
		return errSilent
	}
	if *check && changed {
		return exitCodeError{exitFmtCheck}
	}
	return nil
}

// unifiedDiff is a small line diff (longest common subsequence) in unified
// format, enough for fmt -diff on config files.
func unifiedDiff(name, a, b string) string {
	al, bl := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	n, k := len(al), len(bl)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, k+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := k - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- old/%s\n+++ new/%s\n", name, name)
	i, j := 0, 0
	for i < n || j < k {
		switch {
		case i < n && j < k && al[i] == bl[j]:
			i, j = i+1, j+1
		case j < k && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			sb.WriteString("+" + strings.TrimSuffix(bl[j], "\n") + "\n")
			j++
		default:
			sb.WriteString("-" + strings.TrimSuffix(al[i], "\n") + "\n")
			i++
		}
	}
	return sb.String()
}
