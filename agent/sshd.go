package agent

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Default paths of a container node, used by RunSSHD when a flag is omitted.
const (
	DefaultHostKeyFile        = "/opt/skyward/ssh_host_ed25519_key"
	DefaultAuthorizedKeysFile = "/opt/skyward/authorized_keys"
)

// Timeouts of the server; variables so that tests can shorten them.
var (
	handshakeTimeout  = 30 * time.Second
	keepaliveInterval = 30 * time.Second
	// outputGrace is how long, after a command's process group is gone,
	// the session keeps waiting for more output on its pipes (held open
	// by a process that left the group) before it reports the exit.
	outputGrace = 2 * time.Second
)

// SSHDConfig configures ServeSSH.
type SSHDConfig struct {
	// Listen is the TCP address to listen on (":22"). Ignored when
	// Listener is set.
	Listen string
	// Listener, if non-nil, is used instead of listening on Listen.
	// ServeSSH closes it when it returns.
	Listener net.Listener
	// HostKeyFile holds the server's private host key in PEM form (the
	// OpenSSH format written by ssh.MarshalPrivateKey, or PKCS#8).
	HostKeyFile string
	// AuthorizedKeysFile lists the public keys allowed to log in, in
	// authorized_keys format. It is read at start and again at every
	// authentication, so keys can be rotated without a restart. Key
	// options (from=, command=, ...) are ignored.
	AuthorizedKeysFile string
	// Logf, if non-nil, receives one line per connection event and
	// authentication failure. It never receives secrets. It may be called
	// from several goroutines at once.
	Logf func(format string, args ...any)
	// ReapChildren makes the server reap every child process, orphans
	// included, and become a child subreaper, as it does when it runs as
	// PID 1. Nothing else in the process may then wait for children.
	ReapChildren bool
	// TTL, if positive, is the server's lifetime. Once it has passed,
	// ServeSSH logs it and stops as when ctx is done: it closes every
	// connection and kills the process groups of running sessions. As
	// PID 1 it then also ends every other process (SIGTERM, and SIGKILL
	// for those left after stopGrace), so that the container stops with
	// it. ServeSSH then returns nil.
	TTL time.Duration
}

// ServeSSH serves SSH on cfg's listener until ctx is done (or cfg.TTL has
// passed), then closes the listener and every connection, kills the process
// groups of running sessions, waits for its goroutines and returns nil. It
// returns an error when the configuration is unusable or the listener fails.
func ServeSSH(ctx context.Context, cfg SSHDConfig) error {
	s := &server{logf: cfg.Logf, conns: make(map[net.Conn]struct{})}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	conf, err := s.serverConfig(cfg)
	if err != nil {
		if cfg.Listener != nil {
			cfg.Listener.Close()
		}
		return err
	}
	ln := cfg.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	if cfg.ReapChildren || os.Getpid() == 1 {
		release, err := children.enableReapAll()
		if err != nil {
			ln.Close()
			return err
		}
		defer release()
	}
	var expired atomic.Bool
	if cfg.TTL > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		t := time.AfterFunc(cfg.TTL, func() {
			expired.Store(true)
			s.logf("ttl of %s expired; stopping", cfg.TTL)
			cancel()
		})
		defer t.Stop()
	}

	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.closeConns()
	})
	defer stop()
	s.logf("listening on %s", ln.Addr())

	var acceptErr error
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			// Out of file descriptors and the like: wait, as net/http does.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				s.logf("accept: %v; retrying in %s", err, backoff)
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			acceptErr = fmt.Errorf("accept: %w", err)
			break
		}
		backoff = 5 * time.Millisecond
		if !s.track(c) {
			c.Close()
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.handleConn(c, conf)
		}()
	}
	ln.Close()
	s.closeConns()
	s.wg.Wait()
	// Still reaping every child (release is deferred): the processes
	// ended here are collected.
	if expired.Load() && os.Getpid() == 1 {
		stopAll(s.logf)
	}
	return acceptErr
}

// RunSSHD is `skyward agent sshd`: it parses -listen, -host-key,
// -authorized-keys, -ttl and -link from args, serves until SIGTERM or SIGINT or
// until the ttl (0: none) has passed, and returns the exit code (0 after a
// signal or the ttl, 1 on failure, 2 on bad usage). Logs go to stderr. As
// PID 1 it also reaps orphaned processes, and when the ttl has passed it
// ends every other process (see SSHDConfig.TTL).
func RunSSHD(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("skyward agent sshd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":22", "TCP address to listen on")
	hostKey := fs.String("host-key", DefaultHostKeyFile, "PEM file with the host's private key")
	authKeys := fs.String("authorized-keys", DefaultAuthorizedKeysFile, "authorized_keys file with the keys allowed to log in")
	ttl := fs.Duration("ttl", 0, "stop everything and exit after this long (0: never)")
	link := fs.String("link", "", "make `PATH` a symbolic link to this binary (see LinkBinary), then serve with the binary at PATH")
	linkSum := fs.String("link-sum", "", "with -link: this binary's sha256, recorded beside the link")
	linkID := fs.String("link-id", "", "with -link: the container's own id (see LinkBinary)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *link != "" {
		own, err := LinkBinary(*link, *linkSum, *linkID)
		if err != nil {
			fmt.Fprintf(stderr, "skyward agent sshd: %v\n", err)
			return 1
		}
		if self, _ := os.Executable(); own && self != *link {
			// An upgrade installed over the link: PID 1 is that binary,
			// with the flags every version knows.
			argv := []string{*link, "agent", "sshd", "-listen=" + *listen, "-host-key=" + *hostKey, "-authorized-keys=" + *authKeys}
			if *ttl > 0 {
				argv = append(argv, "-ttl="+ttl.String())
			}
			err := syscall.Exec(*link, argv, os.Environ())
			fmt.Fprintf(stderr, "skyward agent sshd: run %s: %v\n", *link, err)
			return 1
		}
	}
	logger := log.New(stderr, "skyward-sshd: ", log.LstdFlags)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := ServeSSH(ctx, SSHDConfig{
		Listen:             *listen,
		HostKeyFile:        *hostKey,
		AuthorizedKeysFile: *authKeys,
		Logf:               logger.Printf,
		TTL:                *ttl,
	})
	if err != nil {
		fmt.Fprintf(stderr, "skyward agent sshd: %v\n", err)
		return 1
	}
	logger.Printf("stopped")
	return 0
}

// server is the state of one ServeSSH call.
type server struct {
	logf   func(format string, args ...any)
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *server) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

func (s *server) serverConfig(cfg SSHDConfig) (*ssh.ServerConfig, error) {
	pemBytes, err := os.ReadFile(cfg.HostKeyFile)
	if err != nil {
		return nil, fmt.Errorf("read host key: %w", err)
	}
	hostKey, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("parse host key %s: %w", cfg.HostKeyFile, err)
	}
	if _, err := readAuthorizedKeys(cfg.AuthorizedKeysFile); err != nil {
		return nil, err
	}
	conf := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-skyward",
		// Only PublicKeyCallback is set: password and keyboard-interactive
		// are neither offered nor accepted.
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			keys, err := readAuthorizedKeys(cfg.AuthorizedKeysFile)
			if err != nil {
				s.logf("%s: %v", meta.RemoteAddr(), err)
				return nil, errors.New("authorized keys unavailable")
			}
			fp := ssh.FingerprintSHA256(key)
			for _, k := range keys {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					if _, err := lookupAccount(meta.User()); err != nil {
						return nil, err
					}
					return &ssh.Permissions{Extensions: map[string]string{"pubkey-fp": fp}}, nil
				}
			}
			return nil, fmt.Errorf("key %s is not authorized", fp)
		},
		AuthLogCallback: func(meta ssh.ConnMetadata, method string, err error) {
			// "none" is every client's first probe, not a failure worth a line.
			if err != nil && method != "none" {
				s.logf("%s: auth %s for user %q refused: %v", meta.RemoteAddr(), method, meta.User(), err)
			}
		},
	}
	conf.AddHostKey(hostKey)
	return conf, nil
}

// readAuthorizedKeys parses every key of an authorized_keys file.
func readAuthorizedKeys(path string) ([]ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read authorized keys: %w", err)
	}
	var keys []ssh.PublicKey
	for len(bytes.TrimSpace(data)) > 0 {
		k, _, _, rest, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			// ParseAuthorizedKey skips blank and comment lines; what is
			// left does not parse.
			return nil, fmt.Errorf("parse authorized keys %s: %w", path, err)
		}
		keys = append(keys, k)
		data = rest
	}
	return keys, nil
}

func (s *server) handleConn(c net.Conn, conf *ssh.ServerConfig) {
	remote := c.RemoteAddr()
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, conf)
	if err != nil {
		s.logf("%s: handshake: %v", remote, err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	acct, err := lookupAccount(sc.User())
	if err != nil { // /etc/passwd changed since authentication
		s.logf("%s: %v", remote, err)
		sc.Close()
		return
	}
	s.logf("%s: user %q logged in with key %s", remote, sc.User(), sc.Permissions.Extensions["pubkey-fp"])

	done := make(chan struct{})
	go s.keepalive(sc, done)
	go globalRequests(reqs)

	var wg sync.WaitGroup
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, chReqs, err := nc.Accept()
			if err != nil {
				continue
			}
			sess := &session{srv: s, conn: sc, ch: ch, acct: acct}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sess.serve(chReqs)
			}()
		case "direct-tcpip":
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.directTCPIP(sc, nc)
			}()
		default:
			_ = nc.Reject(ssh.UnknownChannelType, fmt.Sprintf("channel type %q is not supported", nc.ChannelType()))
		}
	}
	close(done)
	sc.Close()
	wg.Wait()
	s.logf("%s: user %q disconnected", remote, sc.User())
}

// globalRequests answers keepalives and refuses everything else, notably
// tcpip-forward: this server does no remote forwarding.
func globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		if req.WantReply {
			_ = req.Reply(req.Type == "keepalive@openssh.com", nil)
		}
	}
}

// keepalive closes a connection whose client stopped answering, so that
// its sessions' processes are killed instead of running forever.
func (s *server) keepalive(sc *ssh.ServerConn, done <-chan struct{}) {
	t := time.NewTicker(keepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		replied := make(chan struct{})
		go func() {
			// Any reply, even a refusal, proves the client alive.
			_, _, _ = sc.SendRequest("keepalive@openssh.com", true, nil)
			close(replied)
		}()
		select {
		case <-done:
			return
		case <-replied:
		case <-time.After(keepaliveInterval):
			s.logf("%s: client stopped answering keepalives; closing", sc.RemoteAddr())
			sc.Close()
			return
		}
	}
}

// stopGrace is how long stopAll gives processes to exit after SIGTERM.
const stopGrace = 5 * time.Second

// stopAll ends every other process of the node (the container) when this
// one is PID 1: SIGTERM, then SIGKILL for what is left after stopGrace.
// It does nothing in any other process: kill(-1) would reach every process
// the user may signal.
func stopAll(logf func(string, ...any)) {
	if os.Getpid() != 1 {
		return
	}
	logf("stopping every process")
	if err := syscall.Kill(-1, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return // nothing else runs
	}
	for deadline := time.Now().Add(stopGrace); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		// Signal 0 only checks: ESRCH once none is left (the reaper
		// collects the zombies).
		if errors.Is(syscall.Kill(-1, 0), syscall.ESRCH) {
			return
		}
	}
	logf("killing the processes left after %s", stopGrace)
	_ = syscall.Kill(-1, syscall.SIGKILL)
}
