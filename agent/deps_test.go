package agent

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoProviderSDKs keeps the agent, which ships to every node, free of
// provider SDKs and of the controller's provider packages.
func TestNoProviderSDKs(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "github.com/skyward-sh/skyward/agent")
	cmd.Env = append(os.Environ(), "GOOS=linux") // what runs on nodes
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	forbidden := []string{"docker", "aws-sdk", "runpod", "github.com/skyward-sh/skyward/providers"}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps printed nothing")
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if strings.Contains(dep, f) {
				t.Errorf("agent depends on %s (contains %q)", dep, f)
			}
		}
	}
}
