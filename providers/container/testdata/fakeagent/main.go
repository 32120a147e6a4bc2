// Command fakeagent stands in for `skyward agent sshd` in the container
// provider's tests: it listens on :22 and greets every connection with an
// SSH banner. It ignores its arguments.
package main

import (
	"log"
	"net"
)

func main() {
	ln, err := net.Listen("tcp", ":22")
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			c.Write([]byte("SSH-2.0-fake\r\n"))
			buf := make([]byte, 256)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
}
