// Command runpod-emulator serves the RunPod emulator of package runpodtest
// on a loopback port, so that a pool can be tried on "RunPod" without an
// account: its pods are Docker containers of the pool's image, which must
// have OpenSSH (testdata/mkbaseimage.sh builds one).
//
//	go run ./providers/runpod/runpodtest/cmd/runpod-emulator [-addr 127.0.0.1:8765] [-key KEY]
//
// It prints the environment that points skyward at it (RUNPOD_REST_URL and
// RUNPOD_API_KEY) and runs until interrupted, then removes every container
// and network it created.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/skyward-sh/skyward/providers/runpod/runpodtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "runpod-emulator:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	key := flag.String("key", "", "API key clients must send (default: a random one, printed)")
	flag.Parse()
	if *key == "" {
		b := make([]byte, 12)
		rand.Read(b)
		*key = "rpa_EMULATOR_" + hex.EncodeToString(b)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s: listen on a loopback address only", *addr)
	}
	s, err := runpodtest.New(runpodtest.Options{Key: *key})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("export RUNPOD_REST_URL=http://%s/v1\nexport RUNPOD_API_KEY=%s\n", ln.Addr(), *key)
	fmt.Fprintln(os.Stderr, "runpod-emulator: serving; Ctrl-C stops it and removes its pods")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			s.Close()
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	return s.Close()
}
