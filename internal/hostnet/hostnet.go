// Package hostnet tells whether an address is reached over one of this
// machine's own links.
package hostnet

import "net"

// OnLink reports whether ip is on the network of one of addrs (this
// machine's interface addresses, as net.InterfaceAddrs lists them): this
// machine itself, or a host reached over that link rather than through a
// router. Loopback networks and default routes (a /0) do not count.
func OnLink(ip net.IP, addrs []net.Addr) bool {
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() {
			continue
		}
		if ones, _ := n.Mask.Size(); ones == 0 {
			continue
		}
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Addrs returns interface addresses as net.InterfaceAddrs does, from
// CIDRs such as "172.28.0.1/16": for tests. It panics on a bad CIDR.
func Addrs(cidrs ...string) []net.Addr {
	out := make([]net.Addr, 0, len(cidrs))
	for _, c := range cidrs {
		ip, n, err := net.ParseCIDR(c)
		if err != nil {
			panic(err)
		}
		n.IP = ip
		out = append(out, n)
	}
	return out
}
