package hclspec

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// testSchemas are small provider schemas resembling the real providers'.
func testSchemas() map[string]hcldec.ObjectSpec {
	return map[string]hcldec.ObjectSpec{
		"container": {
			"binary":  &hcldec.AttrSpec{Name: "binary", Type: cty.String},
			"image":   &hcldec.AttrSpec{Name: "image", Type: cty.String},
			"network": &hcldec.AttrSpec{Name: "network", Type: cty.String},
		},
		"aws": {
			"region": &hcldec.AttrSpec{Name: "region", Type: cty.String},
		},
		"runpod": {
			"api_key": &hcldec.AttrSpec{Name: "api_key", Type: cty.String},
		},
	}
}

func corpusFiles(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*"+FileSuffix))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = filepath.Base(m)
	}
	return names
}

func TestValidCorpus(t *testing.T) {
	const dir = "testdata/valid"
	names := corpusFiles(t, dir)
	if len(names) < 6 {
		t.Fatalf("only %d valid fixtures", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			cfg, diags := loadFiles(dir, []string{name}, LoadOptions{ProviderSchemas: testSchemas()})
			if len(diags) > 0 {
				var b strings.Builder
				DiagnosticsText(&b, cfg.Files, diags, false, 0)
				t.Fatalf("unexpected diagnostics:\n%s", b.String())
			}
		})
	}
}

// errorMarker matches the expected-error comments of the invalid corpus.
// A line may carry several: `# ERROR: A # ERROR: B`.
var errorMarker = regexp.MustCompile(`#\s*ERROR:\s*([^#]*[^#\s])`)

type lineSummary struct {
	Line    int
	Summary string
}

func TestInvalidCorpus(t *testing.T) {
	const dir = "testdata/invalid"
	names := corpusFiles(t, dir)
	if len(names) < 30 {
		t.Fatalf("only %d invalid fixtures", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			var want []lineSummary
			for i, line := range strings.Split(string(src), "\n") {
				for _, m := range errorMarker.FindAllStringSubmatch(line, -1) {
					want = append(want, lineSummary{i + 1, m[1]})
				}
			}
			if len(want) == 0 {
				t.Fatal("fixture marks no expected error")
			}

			cfg, diags := loadFiles(dir, []string{name}, LoadOptions{ProviderSchemas: testSchemas()})
			var got []lineSummary
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without subject: %s: %s", d.Summary, d.Detail)
					continue
				}
				if d.Subject.Filename != filepath.Join(dir, name) {
					t.Errorf("diagnostic in %s, not in the fixture", d.Subject.Filename)
				}
				if d.Severity != hcl.DiagError {
					t.Errorf("line %d: %q is not an error", d.Subject.Start.Line, d.Summary)
				}
				got = append(got, lineSummary{d.Subject.Start.Line, d.Summary})
			}
			sortLineSummaries(want)
			sortLineSummaries(got)
			if diff := cmp.Diff(want, got); diff != "" {
				var b strings.Builder
				DiagnosticsText(&b, cfg.Files, diags, false, 0)
				t.Errorf("diagnostics (-marked +reported):\n%s\n%s", diff, b.String())
			}
			for _, d := range diags {
				checkDiagnosticStyle(t, d)
			}
		})
	}
}

func sortLineSummaries(s []lineSummary) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Line != s[j].Line {
			return s[i].Line < s[j].Line
		}
		return s[i].Summary < s[j].Summary
	})
}

// checkDiagnosticStyle holds our own diagnostics to the house style: a short
// sentence-case summary without a period, and a detail of full sentences.
func checkDiagnosticStyle(t *testing.T, d *hcl.Diagnostic) {
	t.Helper()
	if d.Summary == "" || strings.HasSuffix(d.Summary, ".") || strings.ToUpper(d.Summary[:1]) != d.Summary[:1] {
		t.Errorf("summary %q: want a sentence-case phrase without period", d.Summary)
	}
	if d.Detail != "" && !strings.HasSuffix(d.Detail, ".") {
		t.Errorf("detail %q of %q: want full sentences", d.Detail, d.Summary)
	}
}
