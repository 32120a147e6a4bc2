package state

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzRead feeds arbitrary bytes to the state decoder as the state file:
// Read returns a state or an error (no panic), and a state it returns is
// valid and survives encoding and decoding unchanged. Seeds:
// testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"version":1,"serial":3,"lineage":"l","resources":[]}`))
	f.Add([]byte(`{"version":1,"serial":1,"lineage":"l","resources":[{"address":"pool.dev","type":"pool","pool":"dev",` +
		`"provider":"container","id":"n1","attributes":{"network":"x"},"status":"ready"},{"address":"pool.dev.node[0]",` +
		`"type":"node","pool":"dev","index":0,"provider":"container","id":"c1","attributes":{"env":{"A":"1"}},` +
		`"sensitive_attributes":[["env","A"]],"dependencies":["pool.dev"],"status":"tainted"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"resources":[null]}`))
	f.Add([]byte(`{`))
	dir := f.TempDir()
	file := &File{Dir: dir}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, stateName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := file.Read()
		if err != nil || st == nil {
			return
		}
		if err := st.Validate(); err != nil {
			t.Fatalf("Read returned an invalid state: %v", err)
		}
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("a state Read returned does not encode: %v", err)
		}
		var again State
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("a state Read returned does not decode again: %v", err)
		}
		// An empty list and a missing one mean the same ("dependencies":
		// [] is written without the key).
		if diff := cmp.Diff(st, &again, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("state changed by encoding (-read +again):\n%s", diff)
		}
		_ = st.DeepCopy()
	})
}
