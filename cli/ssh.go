package cli

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/executor"
	"github.com/skyward-sh/skyward/planner"
)

func runSSH(m *Meta, args []string) error {
	fs := newFlagSet("ssh")
	pos, rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("ssh takes one node (pool.dev.node[1] or dev/1), then optionally -- COMMAND")
	}
	addr, err := planner.CanonicalAddress(pos[0])
	if err != nil {
		return err
	}
	if !strings.Contains(addr, ".node[") {
		addr += ".node[0]"
	}
	st, err := m.stateOrEmpty()
	if err != nil {
		return err
	}
	if st.Get(addr) == nil {
		return fmt.Errorf("no resource %s in the state; run skyward apply first", addr)
	}
	r := m.liveState(st).Get(addr)
	switch {
	case r == nil:
		return fmt.Errorf("%s no longer exists on its provider; skyward apply creates it again", addr)
	case r.Attributes["running"] == false:
		return fmt.Errorf("%s is stopped on its provider; skyward apply starts it again", addr)
	}
	cl, err := executor.DialNode(m.Ctx, m.keys(), r)
	if err != nil {
		return err
	}
	defer cl.Close()
	ti := cluster.TermInfo{Term: os.Getenv("TERM")}
	if f, ok := m.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) && isTerminal(m.Stdout) {
		ti.IsTerminal, ti.Fd = true, int(f.Fd())
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			ti.Width, ti.Height = w, h
		}
	}
	code, err := cl.Shell(m.Ctx, shellJoin(rest), m.Stdin, m.Stdout, m.Stderr, ti)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCodeError{code}
	}
	return nil
}

// shellJoin quotes argv for the remote shell; a single argument is passed
// as written so that `skyward ssh dev/0 -- 'echo $HOME'` works as in ssh.
func shellJoin(argv []string) string {
	if len(argv) == 1 {
		return argv[0]
	}
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
