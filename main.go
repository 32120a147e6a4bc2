// Command skyward plans and applies compute clusters declared in HCL.
package main

import (
	"os"

	"github.com/skyward-sh/skyward/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
