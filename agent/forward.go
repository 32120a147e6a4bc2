package agent

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// forwardDialTimeout bounds a direct-tcpip connect to a local port.
const forwardDialTimeout = 10 * time.Second

// directTCPIP serves a local forward ("ssh -L"). Only loopback destinations
// are allowed: the check is made on the requested host before anything is
// resolved or dialled, so the node is never used to reach other hosts.
func (s *server) directTCPIP(sc *ssh.ServerConn, nc ssh.NewChannel) {
	var p struct {
		Host       string
		Port       uint32
		OriginHost string
		OriginPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	dest := net.JoinHostPort(p.Host, strconv.FormatUint(uint64(p.Port), 10))
	targets, ok := loopbackTargets(p.Host, p.Port)
	if !ok {
		s.logf("%s: direct-tcpip to %s refused: not a loopback address", sc.RemoteAddr(), dest)
		_ = nc.Reject(ssh.Prohibited, fmt.Sprintf("forwarding to %s is not allowed: only loopback destinations (127.0.0.0/8, ::1, localhost)", dest))
		return
	}
	var conn net.Conn
	var err error
	for _, t := range targets {
		if conn, err = net.DialTimeout("tcp", t, forwardDialTimeout); err == nil {
			break
		}
	}
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		conn.Close()
		return
	}
	go func() {
		// reqs closes when the channel is closed or the connection drops:
		// then the local connection must go too, or a copy would block.
		ssh.DiscardRequests(reqs)
		conn.Close()
	}()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, ch)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(ch, conn)
		_ = ch.CloseWrite()
	}()
	wg.Wait()
	ch.Close()
	conn.Close()
}

// loopbackTargets returns the addresses to dial for a loopback destination
// and false for any other destination. Host names other than "localhost" are
// refused rather than resolved.
func loopbackTargets(host string, port uint32) ([]string, bool) {
	if port == 0 || port > 65535 {
		return nil, false
	}
	ps := strconv.FormatUint(uint64(port), 10)
	if strings.EqualFold(host, "localhost") {
		return []string{net.JoinHostPort("127.0.0.1", ps), net.JoinHostPort("::1", ps)}, true
	}
	addr, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil || addr.Zone() != "" {
		return nil, false
	}
	addr = addr.Unmap()
	if !addr.IsLoopback() {
		return nil, false
	}
	return []string{net.JoinHostPort(addr.String(), ps)}, true
}
