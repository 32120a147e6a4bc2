package hclspec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFormat(t *testing.T) {
	tests := map[string]struct {
		src, want string
	}{
		"aligns equals signs": {
			src:  "pool \"dev\" {\n  nodes = 2\n  memory_gb = 1\n  vcpus=1\n}\n",
			want: "pool \"dev\" {\n  nodes     = 2\n  memory_gb = 1\n  vcpus     = 1\n}\n",
		},
		"fixes indentation": {
			src:  "task \"t\" {\n      pool = pool.dev\nrun = \"x\"\n}\n",
			want: "task \"t\" {\n  pool = pool.dev\n  run  = \"x\"\n}\n",
		},
		"spaces around operators and in lists": {
			src:  "locals {\n  a = [1,2,3]\n  b = 1+2\n}\n",
			want: "locals {\n  a = [1, 2, 3]\n  b = 1 + 2\n}\n",
		},
		"already canonical": {
			src:  "output \"x\" { value = 1 }\n",
			want: "output \"x\" { value = 1 }\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, diags := Format([]byte(tc.src), "test.sky.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("Format (-want +got):\n%s", diff)
			}
			again, _ := Format(got, "test.sky.hcl")
			if diff := cmp.Diff(string(got), string(again)); diff != "" {
				t.Errorf("Format is not idempotent (-once +twice):\n%s", diff)
			}
		})
	}
}

func TestFormatSyntaxError(t *testing.T) {
	got, diags := Format([]byte("pool \"dev\" {\n  nodes = = 3\n"), "broken.sky.hcl")
	if !diags.HasErrors() {
		t.Fatal("no error for a broken file")
	}
	if got != nil {
		t.Errorf("broken file formatted to %q", got)
	}
	if s := diags[0].Subject; s == nil || s.Filename != "broken.sky.hcl" || s.Start.Line != 2 {
		t.Errorf("subject = %v, want broken.sky.hcl line 2", s)
	}
}

// The valid fixtures are canonically formatted, and formatting them is
// idempotent.
func TestFormatFixtures(t *testing.T) {
	for _, name := range corpusFiles(t, "testdata/valid") {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata/valid", name))
			if err != nil {
				t.Fatal(err)
			}
			got, diags := Format(src, name)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if diff := cmp.Diff(string(src), string(got)); diff != "" {
				t.Errorf("fixture is not canonical (-file +formatted):\n%s", diff)
			}
		})
	}
}
