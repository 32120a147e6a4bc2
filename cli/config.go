package cli

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aymanbagabas/go-udiff"
	"github.com/hashicorp/hcl/v2"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/planner"
	"github.com/skyward-sh/skyward/providers"
)

//go:embed example.sky.hcl
var exampleConfig []byte

func runInit(m *Meta, args []string) error {
	fs := newFlagSet("init")
	fs.Bool("input", true, "Accepted for Terraform's CI scripts; init never asks for input.")
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
	matches, _ := filepath.Glob(filepath.Join(m.Dir, "*"+hclspec.FileSuffix))
	if len(matches) == 0 {
		if err := m.writeExample(); err != nil {
			return err
		}
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
	provs, err := m.buildProviders(m.providerConfigs(cfg, st), cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(m.Ctx, 15*time.Second)
	defer cancel()
	for _, addr := range sortedAddrs(provs) {
		if err := provs[addr].Check(ctx); err != nil {
			return fmt.Errorf("provider %s: %w", addr, err)
		}
		fmt.Fprintf(m.Stdout, "- provider %s: reachable%s\n", addr, runtimeOf(provs[addr], ": "))
	}
	fmt.Fprintln(m.Stdout, "\nSkyward has been successfully initialized! Run skyward plan to see what apply would create.")
	return nil
}

// runtimeOf is what a checked provider says of the engine that answered
// ("Podman 4.3.1 (API 1.41) at unix:///run/podman/podman.sock"), after
// prefix; "" for providers that say nothing.
func runtimeOf(p providers.Provider, prefix string) string {
	if r, ok := p.(interface{ Runtime() string }); ok && r.Runtime() != "" {
		return prefix + r.Runtime()
	}
	return ""
}

// writeExample writes main.sky.hcl from the built-in example, with a base
// image that is present on this machine when there is one.
func (m *Meta) writeExample() error {
	const defaultImage = "ubuntu:24.04"
	img := ""
	provs, err := m.buildProviders(map[string]planner.ProviderConfig{"container": {Type: "container", Config: map[string]any{}}}, nil)
	if err == nil {
		ctx, cancel := context.WithTimeout(m.Ctx, 10*time.Second)
		if l, ok := provs["container"].(imageLister); ok && provs["container"].Check(ctx) == nil {
			if local, err := l.LocalImages(ctx); err == nil {
				img = pickBaseImage(local)
			}
		}
		cancel()
	}
	src := exampleConfig
	if img != "" {
		src = bytes.Replace(src, []byte(strconv.Quote(defaultImage)), []byte(strconv.Quote(img)), 1)
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "main.sky.hcl"), src, 0o644); err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, "Wrote an example configuration to main.sky.hcl.")
	if img != "" {
		fmt.Fprintf(m.Stdout, "Its nodes start from %s, an image present on this machine.\n\n", img)
		return nil
	}
	fmt.Fprintf(m.Stdout, "No Ubuntu, Debian or skyward test base image is present on this machine, so its nodes "+
		"start from %s, which apply pulls. %s\n\n", defaultImage, buildBaseImageHint)
	return nil
}

func runValidate(m *Meta, args []string) error {
	fs := newFlagSet("validate")
	jsonOut := fs.Bool("json", false, "Print the result in Terraform's validate -json shape.")
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
		files, diags := relativeDiags(m.Dir, files, diags)
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
	check := fset.Bool("check", false, "Change no file; exit 3 when a file is not in canonical format.")
	diff := fset.Bool("diff", false, "Print the changes as a unified diff (patch -p1 applies it).")
	recursive := fset.Bool("recursive", false, "Also format the files in subdirectories.")
	list := fset.Bool("list", true, "Print the names of the files that change; -list=false prints none.")
	write := fset.Bool("write", true, "Rewrite the files; -write=false leaves them as they are.")
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
			// Variable files are formatted too, as terraform fmt does .tfvars,
			// and test files as it does .tftest.hcl.
			if strings.HasSuffix(d.Name(), hclspec.FileSuffix) || strings.HasSuffix(d.Name(), ".skyvars") || strings.HasSuffix(d.Name(), hclspec.TestFileSuffix) {
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

// unifiedDiff returns the unified diff (three lines of context, hunk
// headers) that turns a into b, with old/ and new/ before the name, so
// that patch -p1 in the working directory applies it.
func unifiedDiff(name, a, b string) string {
	name = filepath.ToSlash(name)
	return udiff.Unified("old/"+name, "new/"+name, a, b)
}
