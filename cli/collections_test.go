package cli

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// Off a node, the collection commands either run on an applied pool over
// SSH or say why they cannot.
func TestCollectionsOffNode(t *testing.T) {
	old := nodeRoot
	nodeRoot = t.TempDir() // no agent.json: not a node
	t.Cleanup(func() { nodeRoot = old })
	tests := map[string]struct {
		args []string
		want string
	}{
		"kv without a pool":      {[]string{"kv", "get", "k"}, "kv: no applied pool here"},
		"queue without a pool":   {[]string{"queue", "q", "get"}, "queue: no applied pool here"},
		"barrier off a node":     {[]string{"barrier", "b", "-n", "2"}, "barrier runs on a pool's nodes"},
		"lock off a node":        {[]string{"lock", "l", "--", "true"}, "lock runs on a pool's nodes"},
		"kv of an unknown -pool": {[]string{"kv", "-pool", "nope", "get", "k"}, `kv: pool "nope" is not applied`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errb strings.Builder
			code := Run(append([]string{"-chdir=" + t.TempDir()}, tc.args...), strings.NewReader(""), &out, &errb)
			if code != 1 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errb.String(), tc.want)
			}
		})
	}
}

func TestForEach(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[int]bool{}
	if err := forEach(ctx, 100, func(ctx context.Context, i int) error {
		mu.Lock()
		seen[i] = true
		mu.Unlock()
		return nil
	}); err != nil || len(seen) != 100 {
		t.Fatalf("forEach over 100: %v, %d seen", err, len(seen))
	}
	boom := errors.New("boom")
	err := forEach(ctx, 100, func(ctx context.Context, i int) error {
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("forEach with a failing op: %v, want boom", err)
	}
}
