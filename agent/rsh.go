package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// MPIDir holds, on the head, what an mpi task's mpirun needs to reach the
// other nodes: the hostfile and RSHConfigFile.
const MPIDir = Root + "/mpi"

// RSHConfigFile is the JSON RSHConfig that `skyward agent rsh` reads.
const RSHConfigFile = MPIDir + "/rsh.json"

// RSHConfig is how the head reaches the pool's other nodes over SSH for
// an MPI launcher: the pool's key and every node's SSH endpoint on the
// private network, with its pinned host key. The controller writes it
// (0600) when an mpi task runs.
type RSHConfig struct {
	// Key is the pool's SSH private key, PEM.
	Key   string             `json:"key"`
	Hosts map[string]RSHHost `json:"hosts"` // by private address
}

// RSHHost is one node's SSH endpoint.
type RSHHost struct {
	Port    int    `json:"port"`
	User    string `json:"user"`
	HostKey string `json:"host_key"` // authorized_keys format
}

// RunRSH is `skyward agent rsh [-l USER] [-x] ... HOST COMMAND...`, an
// rsh/ssh work-alike for MPI launchers (OpenMPI's plm_rsh_agent): it runs
// COMMAND through HOST's shell over SSH, with the pool's key and HOST's
// pinned host key, copying standard input, output and error, and returns
// its exit code (255 when it could not connect, as ssh does).
func RunRSH(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	user := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		// ssh's options that launchers pass; -l and -p take a value.
		switch args[0] {
		case "-l":
			if len(args) > 1 {
				user = args[1]
				args = args[1:]
			}
		case "-p", "-o", "-i":
			if len(args) > 1 {
				args = args[1:]
			}
		}
		args = args[1:]
	}
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: skyward agent rsh [-l USER] HOST COMMAND...")
		return 255
	}
	host, cmd := args[0], strings.Join(args[1:], " ")
	if u, h, ok := strings.Cut(host, "@"); ok {
		user, host = u, h
	}
	code, err := rsh(RSHConfigFile, host, user, cmd, stdin, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "skyward agent rsh %s: %v\n", host, err)
		return 255
	}
	return code
}

func rsh(cfgPath, host, user, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return 0, err
	}
	var cfg RSHConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return 0, fmt.Errorf("read %s: %w", cfgPath, err)
	}
	h, ok := cfg.Hosts[host]
	if !ok {
		return 0, fmt.Errorf("not a node of this pool (%s has no such host)", cfgPath)
	}
	signer, err := ssh.ParsePrivateKey([]byte(cfg.Key))
	if err != nil {
		return 0, fmt.Errorf("pool key: %w", err)
	}
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.HostKey))
	if err != nil {
		return 0, fmt.Errorf("host key: %w", err)
	}
	if user == "" {
		user = h.User
	}
	conf := &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(pinned),
		HostKeyAlgorithms: []string{pinned.Type()},
		Timeout:           15 * time.Second,
	}
	port := h.Port
	if port == 0 {
		port = 22
	}
	conn, err := ssh.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)), conf)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	sess, err := conn.NewSession()
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	sess.Stdout, sess.Stderr = stdout, stderr
	if stdin != nil {
		// Not sess.Stdin: Wait would wait for the copy, and a launcher's
		// standard input may never end.
		w, err := sess.StdinPipe()
		if err != nil {
			return 0, err
		}
		go func() {
			_, _ = io.Copy(w, stdin)
			w.Close()
		}()
	}
	err = sess.Run(cmd)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ee.Signal() != "" {
			return 128 + 15, nil
		}
		return ee.ExitStatus(), nil
	}
	return 0, err
}
