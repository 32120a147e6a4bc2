package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Files read to resolve login users; variables so tests can point them
// elsewhere.
var (
	passwdFile = "/etc/passwd"
	groupFile  = "/etc/group"
)

// account is the identity a session runs as.
type account struct {
	name  string
	uid   uint32
	gid   uint32
	home  string
	shell string // login shell from passwd; "" when unknown
	// cred is set when the agent runs as root and the user is another one.
	cred *syscall.Credential
}

// lookupAccount resolves the SSH user name. A user that exists runs as
// itself; switching users needs the agent to run as root. Without an
// /etc/passwd (minimal images) every user runs as the agent's own identity.
func lookupAccount(name string) (*account, error) {
	euid := uint32(os.Geteuid())
	ents, err := readPasswd()
	if errors.Is(err, fs.ErrNotExist) {
		home := os.Getenv("HOME")
		if home == "" {
			home = "/"
		}
		return &account{name: name, uid: euid, gid: uint32(os.Getegid()), home: home}, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.name != name {
			continue
		}
		if e.uid != euid {
			if euid != 0 {
				return nil, fmt.Errorf("cannot run as user %q: the agent runs as uid %d, not root", name, euid)
			}
			e.cred = &syscall.Credential{Uid: e.uid, Gid: e.gid, Groups: supplementaryGroups(name, e.gid)}
		}
		return e, nil
	}
	return nil, fmt.Errorf("unknown user %q", name)
}

func readPasswd() ([]*account, error) {
	f, err := os.Open(passwdFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*account
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:uid:gid:gecos:home:shell
		fields := strings.Split(sc.Text(), ":")
		if len(fields) != 7 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		uid, err1 := strconv.ParseUint(fields[2], 10, 32)
		gid, err2 := strconv.ParseUint(fields[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, &account{name: fields[0], uid: uint32(uid), gid: uint32(gid), home: fields[5], shell: fields[6]})
	}
	return out, sc.Err()
}

// supplementaryGroups lists the groups of /etc/group that name belongs to.
func supplementaryGroups(name string, primary uint32) []uint32 {
	groups := []uint32{primary}
	f, err := os.Open(groupFile)
	if err != nil {
		return groups
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:gid:member,member
		fields := strings.Split(sc.Text(), ":")
		if len(fields) != 4 {
			continue
		}
		gid, err := strconv.ParseUint(fields[2], 10, 32)
		if err != nil || uint32(gid) == primary {
			continue
		}
		for _, m := range strings.Split(fields[3], ",") {
			if m == name {
				groups = append(groups, uint32(gid))
				break
			}
		}
	}
	return groups
}

// loginShell is the shell an interactive session runs: the user's shell
// from passwd when it is an executable file, else /bin/sh.
func (a *account) loginShell() string {
	if a.shell != "" {
		if fi, err := os.Stat(a.shell); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return a.shell
		}
	}
	return "/bin/sh"
}

// workDir is where a session starts: the home directory when it exists.
func (a *account) workDir() string {
	if fi, err := os.Stat(a.home); err == nil && fi.IsDir() {
		return a.home
	}
	return "/"
}
