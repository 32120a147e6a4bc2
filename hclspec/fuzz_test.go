package hclspec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"
)

// FuzzLoad feeds arbitrary configuration text to the loader and validator:
// whatever the input, Load returns (no panic, no hang), every error has a
// summary, and a configuration without errors keeps its invariants.
// Seeds: testdata/fuzz/FuzzLoad and the valid and invalid fixtures.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		names, _ := filepath.Glob(filepath.Join(dir, "*"+FileSuffix))
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil {
				f.Add(string(b))
			}
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		// file() and its kin read the machine's files (regular files of at
		// most MaxFileRead bytes; TestBadInput checks the bounds): the
		// fuzzer would spend its time reading them.
		if len(src) > 64<<10 || strings.Contains(src, "file") {
			t.Skip()
		}
		start := time.Now()
		defer func() {
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %s", took)
			}
		}()
		f, diags := hclparse.NewParser().ParseHCL([]byte(src), filepath.Join(dir, "main"+FileSuffix))
		cfg, more := decode(dir, []parsedFile{{filename: filepath.Join(dir, "main"+FileSuffix), file: f, diags: diags}},
			LoadOptions{ProviderSchemas: testSchemas()})
		diags = append(diags, more...)
		if cfg == nil {
			t.Fatal("decode returned a nil Config")
		}
		for _, d := range diags {
			if d.Summary == "" {
				t.Errorf("diagnostic without a summary: %+v", d)
			}
		}
		if diags.HasErrors() {
			return
		}
		checkConfig(t, cfg)
	})
}

// checkConfig checks what a valid Config promises its users.
func checkConfig(t *testing.T, cfg *Config) {
	for name, p := range cfg.Pools {
		if p.Nodes < 1 || p.Nodes > MaxNodes {
			t.Errorf("pool %q has %d nodes", name, p.Nodes)
		}
		if p.Concurrency < 1 {
			t.Errorf("pool %q has concurrency %d", name, p.Concurrency)
		}
		if _, ok := cfg.Providers[p.Provider]; !ok {
			t.Errorf("pool %q uses provider %q, which is not in the config", name, p.Provider)
		}
		if p.Image != "" && cfg.Images[p.Image] == nil {
			t.Errorf("pool %q uses image %q, which is not in the config", name, p.Image)
		}
	}
	for name, img := range cfg.Images {
		if _, err := NewExcludes(img.Excludes); err != nil {
			t.Errorf("image %q: excludes accepted at validate are refused later: %v", name, err)
		}
		for _, a := range append(append([]string(nil), img.Apt...), img.Pip...) {
			if a == "" || strings.HasPrefix(a, "-") {
				t.Errorf("image %q: package %q accepted", name, a)
			}
		}
		for k := range img.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				t.Errorf("image %q: env name %q accepted", name, k)
			}
		}
	}
	for name, task := range cfg.Tasks {
		if task.Incomplete {
			continue
		}
		if task.Run == "" && len(task.Command) == 0 {
			t.Errorf("task %q has nothing to run", name)
		}
		if len(task.ForEach) > MaxTaskItems {
			t.Errorf("task %q has %d items", name, len(task.ForEach))
		}
		if cfg.Pools[task.Pool] == nil {
			t.Errorf("task %q runs on pool %q, which is not in the config", name, task.Pool)
		}
	}
}
