package planner

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/skyward-sh/skyward/internal/skytest"
)

// FuzzDecodePlanFile feeds arbitrary plans to the plan-file decoder, in a
// file whose checksum matches when resum is set (so that the fuzzer gets
// past it to the checks of the plan itself) and as raw file bytes
// otherwise. The decoder returns a plan or an error (no panic), and a plan
// it returns is valid, renders, and encodes to a file that decodes again.
// Seeds: testdata/fuzz/FuzzDecodePlanFile and a real plan.
func FuzzDecodePlanFile(f *testing.F) {
	p, err := Build(skytest.Config(2, 1, "img:1"), appliedSensitive(f, secretConfig("s3cret")), skytest.Registry(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	plan, err := json.Marshal(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plan, true)
	file, err := encodePlanFile("/dir", p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(file, false)
	f.Add([]byte(`{"lineage":"l","changes":[{"address":"pool.dev","type":"pool","pool":"dev","provider":"container","action":65}]}`), true)
	f.Fuzz(func(t *testing.T, data []byte, resum bool) {
		if resum {
			wrapped, err := wrapPlan("/dir", data)
			if err != nil {
				return
			}
			data = wrapped
		}
		p, err := DecodePlanFile(data)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decoded an invalid plan: %v", err)
		}
		var human bytes.Buffer
		p.Render(&human, Colors{})
		if _, err := json.Marshal(p.JSON("fuzz")); err != nil {
			t.Fatalf("show -json of a decoded plan: %v", err)
		}
		again, err := encodePlanFile("/dir", p)
		if err != nil {
			t.Fatalf("encode the decoded plan: %v", err)
		}
		if _, err := DecodePlanFile(again); err != nil {
			t.Fatalf("a plan encoded from a decoded one is refused: %v", err)
		}
	})
}

// FuzzParseAddress: every accepted address form has one canonical address,
// which parses to the same pool and index and is its own canonical form.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"pool.dev", "pool.dev.node[1]", "dev/1", "dev", "pool.", "pool.dev.node[-1]",
		"pool.dev.node[01]", "a/b", "pool.dev.node[1].x", "/", "pool.d/e.node[2]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		pool, idx, err := ParseAddress(addr)
		if err != nil {
			return
		}
		if idx < -1 {
			t.Fatalf("ParseAddress(%q) index %d", addr, idx)
		}
		ca, err := CanonicalAddress(addr)
		if err != nil {
			t.Fatalf("CanonicalAddress(%q): %v, though it parses", addr, err)
		}
		pool2, idx2, err := ParseAddress(ca)
		if err != nil || pool2 != pool || idx2 != idx {
			t.Fatalf("%q -> %q -> (%q, %d, %v); want (%q, %d)", addr, ca, pool2, idx2, err, pool, idx)
		}
		if again, _ := CanonicalAddress(ca); again != ca {
			t.Fatalf("canonical address %q is not its own canonical form (%q)", ca, again)
		}
	})
}
