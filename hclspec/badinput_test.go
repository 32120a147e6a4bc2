package hclspec

import (
	"strings"
	"testing"
)

// TestBadInput: input that must be refused at validate, each with a
// message that says what is wrong and what is allowed.
func TestBadInput(t *testing.T) {
	tests := map[string]struct {
		src    string
		detail string
	}{
		"too many nodes": {`pool "p" { nodes = 1e9 }`,
			`The value of "nodes" must be at most 1000; got 1000000000.`},
		"count too large": {`pool "p" {}
task "t" {
  pool  = pool.p
  count = 1e12
  run   = "true"
}`, `The value of "count" must be at most 10000; got 1000000000000.`},
		"for_each too long": {`pool "p" {}
task "t" {
  pool     = pool.p
  for_each = flatten([for i in range(11) : range(1000)])
  run      = "true"
}`, `The for_each of a task may have at most 10000 items; got 11000.`},
		"apt option": {`image "i" { apt = ["-oAPT::Get::Foo=1"] }`,
			`The apt item "-oAPT::Get::Foo=1" starts with "-", so apt-get would read it as an option rather than a package.`},
		"pip option": {`image "i" { pip = ["-r", "x.txt"] }`,
			`The pip item "-r" starts with "-", so pip would read it as an option rather than a package.`},
		"env name with =": {`image "i" { env = { "F=G" = "1" } }`,
			`The name "F=G" in "env" cannot be an environment variable`},
		"empty env name": {`image "i" { env = { "" = "1" } }`,
			`The name "" in "env" cannot be an environment variable`},
		"empty run": {`pool "p" {}
task "t" {
  pool = pool.p
  run  = ""
}`, `The run script of task "t" is empty`},
		"empty command": {`pool "p" {}
task "t" {
  pool    = pool.p
  command = ["", "x"]
}`, `The first element of command, the program to run, is empty.`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeConfig(t, map[string]string{"main.sky.hcl": tc.src})
			_, diags := Load(dir, LoadOptions{ProviderSchemas: testSchemas()})
			if !diags.HasErrors() {
				t.Fatalf("no error")
			}
			var details []string
			for _, d := range diags {
				details = append(details, d.Detail)
			}
			if !strings.Contains(strings.Join(details, "\n"), tc.detail) {
				t.Errorf("details %q lack %q", details, tc.detail)
			}
		})
	}
}
