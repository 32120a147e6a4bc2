//go:build linux

package agent

import (
	"testing"
	"time"
)

// TestBootTime checks that the start of PID 1 is read from /proc: in the
// past, and no earlier than the machine's uptime allows.
func TestBootTime(t *testing.T) {
	b := bootTime()
	if now := time.Now(); !b.Before(now) || now.Sub(b) > 10*365*24*time.Hour {
		t.Fatalf("bootTime() = %v, now %v", b, now)
	}
}

// TestServeTTL checks that the agent shuts the node down once its ttl,
// counted from boot, has passed, and not before.
func TestServeTTL(t *testing.T) {
	called := make(chan struct{}, 4)
	old := powerOff
	powerOff = func() error { called <- struct{}{}; return nil }
	t.Cleanup(func() { powerOff = old })

	tests := map[string]struct {
		ttl  string
		want bool
	}{
		"ended":     {ttl: "1ns", want: true},
		"not ended": {ttl: "876000h", want: false},
		"none":      {ttl: "", want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var logs syncBuffer
			startDaemon(t, Config{Pool: "dev", NumNodes: 1, Token: testToken, ClusterPort: 0, TTL: tc.ttl}, &logs)
			select {
			case <-called:
				if !tc.want {
					t.Fatalf("powered off with ttl %q", tc.ttl)
				}
			case <-time.After(300 * time.Millisecond):
				if tc.want {
					t.Fatalf("not powered off with ttl %q; log:\n%s", tc.ttl, logs.String())
				}
			}
		})
	}
}
