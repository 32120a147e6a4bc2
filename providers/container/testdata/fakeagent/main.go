// Command fakeagent stands in for `skyward agent sshd` in the container
// provider's tests: it listens on :22 and greets every connection with an
// SSH banner. Of its arguments it heeds only -setup-stdin, writing the
// node files from its standard input as the agent does.
package main

import (
	"errors"
	"log"
	"net"
	"os"
	"slices"

	"github.com/skyward-sh/skyward/agent"
)

func main() {
	if slices.Contains(os.Args[1:], "-setup-stdin") {
		if _, err := os.Stat(agent.DefaultHostKeyFile); errors.Is(err, os.ErrNotExist) {
			if err := agent.SetupFromArchive("/", os.Stdin); err != nil {
				log.Fatal(err)
			}
		}
	}
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
