package hostnet

import (
	"net"
	"testing"
)

func TestOnLink(t *testing.T) {
	addrs := Addrs("127.0.0.1/8", "172.28.0.1/16", "10.0.3.4/32", "fd00::1/64")
	tests := map[string]bool{
		"172.28.0.3": true,  // a container on a bridge of this machine
		"172.28.0.1": true,  // the bridge itself
		"10.0.3.4":   true,  // this machine's /32
		"10.0.3.5":   false, // beyond the /32
		"172.29.0.3": false,
		"127.0.0.2":  false, // loopback is not a link
		"fd00::9":    true,
		"8.8.8.8":    false,
	}
	for ip, want := range tests {
		if got := OnLink(net.ParseIP(ip), addrs); got != want {
			t.Errorf("OnLink(%s) = %v, want %v", ip, got, want)
		}
	}
	if OnLink(net.ParseIP("1.2.3.4"), Addrs("0.0.0.0/0")) {
		t.Error("a default route counts as a link")
	}
}
