package cli

import (
	"fmt"
	"sort"

	"github.com/skyward-sh/skyward/agent"
)

func sortedAddrs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// runAgent is the hidden `skyward agent` command that runs on nodes.
func runAgent(m *Meta, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("agent: missing subcommand (sshd, bootstrap or serve)")
	}
	agent.Version = Version
	switch args[0] {
	case "bootstrap":
		// The process's own stdout, not Run's wrapper: the bootstrap
		// handles a broken stdout itself, and watches it (a file) for
		// the session's end.
		stdout := m.Stdout
		if m.out != nil {
			stdout = m.out.w
		}
		return exitIf(agent.RunBootstrap(args[1:], m.Stdin, stdout, m.Stderr))
	case "serve":
		return exitIf(agent.RunServe(args[1:], m.Stderr))
	case "sshd":
		return exitIf(agent.RunSSHD(args[1:], m.Stderr))
	case "guard":
		return exitIf(agent.RunGuard(args[1:], m.Stderr))
	case "rsh":
		return exitIf(agent.RunRSH(args[1:], m.Stdin, m.Stdout, m.Stderr))
	}
	return fmt.Errorf("agent: unknown subcommand %q", args[0])
}

// exitIf turns a non-zero exit code into the error that carries it.
func exitIf(code int) error {
	if code != 0 {
		return exitCodeError{code}
	}
	return nil
}
