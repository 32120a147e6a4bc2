package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

var (
	// ErrHostKeyMismatch: the node presented a host key other than the one
	// pinned for it. Never retried.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrHostKeyUnknown: Dial was asked to connect to a node whose host key
	// is not pinned. Never retried.
	ErrHostKeyUnknown = errors.New("no pinned host key")
	// ErrAuthFailed: the node refused the client key. Never retried.
	ErrAuthFailed = errors.New("authentication failed")

	// errEndpoint marks an Endpoint that cannot work (no key, bad pinned
	// key); never retried.
	errEndpoint = errors.New("invalid endpoint")
)

// Timeouts of one connection attempt, and the keepalive period.
var (
	connectTimeout    = 10 * time.Second
	handshakeTimeout  = 20 * time.Second
	keepaliveInterval = 15 * time.Second
)

// Endpoint says how to reach a node over SSH.
type Endpoint struct {
	// Address names the node in messages, e.g. "pool.dev.node[1]".
	Address string
	// Host and Port locate the SSH server; Port 0 means 22.
	Host string
	Port int
	// User is the login user.
	User string
	// HostKey is the node's pinned public host key in authorized_keys
	// format ("ssh-ed25519 AAAA..."); empty while it is not known yet.
	HostKey string
	// Signer is the client key.
	Signer ssh.Signer
	// Guard runs every command under `skyward agent guard` (once the
	// agent binary is on the node), for SSH servers that leave a
	// session's processes running when it ends (OpenSSH): the guard kills
	// them as skyward's own server does.
	Guard bool
	// ProxyCommand, when set, is an OpenSSH ProxyCommand run with sh -c:
	// the SSH connection goes over its stdin and stdout instead of a TCP
	// connection to Host:Port (a bastion, an SSM or EC2 Instance Connect
	// tunnel). %h, %p, %r and %% are expanded as OpenSSH does.
	ProxyCommand string
}

func (ep Endpoint) hostPort() string {
	port := ep.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(port))
}

// name is how errors refer to the node.
func (ep Endpoint) name() string {
	if ep.Address != "" {
		return ep.Address
	}
	return ep.hostPort()
}

// Client is an SSH connection to one node. Its methods may be called from
// several goroutines at once; each Run, Output, Shell or Upload uses a
// session (channel) of its own.
type Client struct {
	ep   Endpoint
	conn *ssh.Client
	done chan struct{}
	lost chan struct{} // closed when the connection has ended

	agentOnce sync.Once
	agentHTTP *http.Client // see agentClient
	closeOnce sync.Once
	closeErr  error
}

// Dial connects to ep once and verifies that the node presents exactly the
// host key pinned in ep.HostKey. It fails with ErrHostKeyUnknown when none
// is pinned, ErrHostKeyMismatch when another key is presented (the message
// names the node and both SHA256 fingerprints) and ErrAuthFailed when the
// node refuses the client key. ctx bounds the connection attempt only.
func Dial(ctx context.Context, ep Endpoint) (*Client, error) {
	if ep.HostKey == "" {
		return nil, fmt.Errorf("%s: ssh connect %s: %w: its host key must be recorded before connecting", ep.name(), ep.hostPort(), ErrHostKeyUnknown)
	}
	c, _, err := dial(ctx, ep, false)
	return c, err
}

// DialRecord connects to ep once at first contact with a node whose host
// key could not be learnt out of band (cloud instances): it accepts the
// host key the node presents and returns it in authorized_keys format. The
// caller must pin that key (ep.HostKey) for every later Dial. ep.HostKey is
// ignored.
func DialRecord(ctx context.Context, ep Endpoint) (*Client, string, error) {
	return dial(ctx, ep, true)
}

// WaitDial calls Dial until it succeeds or ctx is done, for nodes that are
// still starting. Connection failures (refused, reset, EOF or timeout during
// the handshake) are retried every poll (25ms when poll <= 0) for the
// first second, then after a pause that doubles up to 1s; the first
// attempt is immediate.
// ErrHostKeyMismatch, ErrAuthFailed, ErrHostKeyUnknown and unusable
// endpoints return at once. When ctx ends, the error wraps both ctx's error
// and the last dial error, and says how long it waited.
func WaitDial(ctx context.Context, ep Endpoint, poll time.Duration) (*Client, error) {
	c, _, err := waitDial(ctx, poll, func() (*Client, string, error) {
		c, err := Dial(ctx, ep)
		return c, "", err
	})
	return c, err
}

// WaitDialRecord is WaitDial for DialRecord: at first contact with a node
// that is still starting, it retries until the node answers and returns the
// host key it presented, which the caller must pin before sending anything.
func WaitDialRecord(ctx context.Context, ep Endpoint, poll time.Duration) (*Client, string, error) {
	return waitDial(ctx, poll, func() (*Client, string, error) { return DialRecord(ctx, ep) })
}

func waitDial(ctx context.Context, poll time.Duration, dialOnce func() (*Client, string, error)) (*Client, string, error) {
	if poll <= 0 {
		poll = 25 * time.Millisecond
	}
	start := time.Now()
	delay := poll
	var last error
	for {
		c, key, err := dialOnce()
		if err == nil {
			return c, key, nil
		}
		if permanent(err) {
			return nil, "", err
		}
		// An attempt cut short by ctx says less than the one before it.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		if ctx.Err() != nil {
			return nil, "", &waitError{last: last, cause: context.Cause(ctx), waited: time.Since(start)}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, "", &waitError{last: last, cause: context.Cause(ctx), waited: time.Since(start)}
		case <-t.C:
		}
		// A node just started answers within moments (a container's
		// server starts in tens of milliseconds): poll at the given pace
		// for a while, then back off for nodes that take minutes.
		if time.Since(start) > flatPolling {
			delay = min(2*delay, time.Second)
		}
	}
}

// flatPolling is how long waitDial keeps its first pace.
const flatPolling = time.Second

// Fingerprint is the SHA256 fingerprint of a public key in authorized_keys
// format, or the key itself when it cannot be parsed.
func Fingerprint(authorizedKey string) string {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return authorizedKey
	}
	return ssh.FingerprintSHA256(k)
}

func permanent(err error) bool {
	return errors.Is(err, ErrHostKeyMismatch) || errors.Is(err, ErrAuthFailed) ||
		errors.Is(err, ErrHostKeyUnknown) || errors.Is(err, errEndpoint)
}

// waitError is WaitDial's error when ctx ended first.
type waitError struct {
	last   error
	cause  error
	waited time.Duration
}

func (e *waitError) Error() string {
	return fmt.Sprintf("%v (gave up after %s: %v)", e.last, e.waited.Round(time.Millisecond), e.cause)
}

func (e *waitError) Unwrap() []error { return []error{e.last, e.cause} }

func dial(ctx context.Context, ep Endpoint, record bool) (*Client, string, error) {
	fail := func(err error) (*Client, string, error) {
		return nil, "", fmt.Errorf("%s: ssh connect %s: %w", ep.name(), ep.hostPort(), err)
	}
	if ep.Signer == nil {
		return fail(fmt.Errorf("%w: no client key", errEndpoint))
	}
	if ep.User == "" {
		return fail(fmt.Errorf("%w: no user", errEndpoint))
	}
	var pinned ssh.PublicKey
	if !record {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ep.HostKey))
		if err != nil {
			return fail(fmt.Errorf("%w: parse pinned host key: %w", errEndpoint, err))
		}
		pinned = k
	}

	// Written by the handshake before NewClientConn returns.
	var presented ssh.PublicKey
	var mismatch error
	cfg := &ssh.ClientConfig{
		User: ep.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(ep.Signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			presented = key
			if pinned != nil && !bytes.Equal(key.Marshal(), pinned.Marshal()) {
				mismatch = fmt.Errorf("%w: the node's host key changed: pinned %s, presented %s",
					ErrHostKeyMismatch, ssh.FingerprintSHA256(pinned), ssh.FingerprintSHA256(key))
				return mismatch
			}
			return nil
		},
		HostKeyAlgorithms: hostKeyAlgorithms(pinned),
	}

	var nc net.Conn
	var err error
	if ep.ProxyCommand != "" {
		nc, err = dialProxy(ctx, ep)
	} else {
		d := net.Dialer{Timeout: connectTimeout}
		nc, err = d.DialContext(ctx, "tcp", ep.hostPort())
	}
	if err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	sc, chans, reqs, err := ssh.NewClientConn(nc, ep.hostPort(), cfg)
	ctxAlive := stop()
	if err != nil {
		nc.Close()
		switch {
		case mismatch != nil:
			return fail(mismatch)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return fail(fmt.Errorf("%w as %q with key %s: %w", ErrAuthFailed, ep.User, ssh.FingerprintSHA256(ep.Signer.PublicKey()), err))
		case ctx.Err() != nil:
			return fail(fmt.Errorf("%w: %w", context.Cause(ctx), err))
		}
		if pc, ok := nc.(*proxyConn); ok {
			err = pc.explain(err)
		}
		return fail(err)
	}
	if !ctxAlive {
		sc.Close()
		return fail(context.Cause(ctx))
	}
	_ = nc.SetDeadline(time.Time{})
	c := &Client{ep: ep, conn: ssh.NewClient(sc, chans, reqs), done: make(chan struct{}), lost: make(chan struct{})}
	go c.keepalive()
	go func() {
		c.conn.Wait()
		close(c.lost)
	}()
	return c, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(presented))), nil
}

// hostKeyAlgorithms asks the server for the pinned key's type, so that a
// server holding several host keys presents the pinned one. At first contact
// it prefers ed25519, then ECDSA, then RSA with SHA-2.
func hostKeyAlgorithms(pinned ssh.PublicKey) []string {
	if pinned == nil {
		return []string{
			ssh.KeyAlgoED25519,
			ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
			ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
		}
	}
	if pinned.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{pinned.Type()}
}

// keepalive closes the connection when the node stops answering, so that
// calls in progress fail instead of hanging on a dead peer.
func (c *Client) keepalive() {
	t := time.NewTicker(keepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			// Any reply, even a refusal, proves the node alive.
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case <-c.done:
			return
		case err := <-replied:
			if err != nil {
				return
			}
		case <-time.After(keepaliveInterval):
			c.conn.Close()
			return
		}
	}
}

// Lost reports whether the connection has ended without Close: the node
// went away or the network dropped it. Work that failed on a lost
// connection may be retried on a new one.
func (c *Client) Lost() bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case <-c.lost:
		return true
	default:
		return false
	}
}

// Conn returns the underlying connection, for instance to open direct-tcpip
// forwards with Dial. It is owned by the Client: do not close it.
func (c *Client) Conn() *ssh.Client { return c.conn }

// Endpoint returns the endpoint the client was dialled with.
func (c *Client) Endpoint() Endpoint { return c.ep }

// Close closes the connection. Remote commands still running are killed
// with their process groups by the node's agent. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.closeErr = c.conn.Close()
	})
	return c.closeErr
}
