package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/skyward-sh/skyward/providers/runpod"
	"github.com/skyward-sh/skyward/providers/runpod/runpodtest"
)

// runpodKey is the API key of the scripts' RunPod emulators.
const runpodKey = "rpa_SCRIPTKEY_d5e1f0a97c3b"

// runpodServers are the scripts' emulators, by work directory.
var runpodServers sync.Map

func runpodServer(ts *testscript.TestScript) *runpodtest.Server {
	s, ok := runpodServers.Load(ts.Getenv("WORK"))
	if !ok {
		ts.Fatalf("no RunPod emulator: run 'runpod start' first")
	}
	return s.(*runpodtest.Server)
}

// runpod SUBCOMMAND ...: the script's RunPod emulator, whose pods are
// containers of $BASE_IMAGE.
//
//	runpod start            start one; export RUNPOD_REST_URL and RUNPOD_API_KEY
//	runpod pods N           the emulator has N pods
//	runpod clusters N       the emulator has N Instant Clusters
//	runpod templates N      the emulator has N pod templates
//	runpod wait-pods N      wait (up to 60s) until it has N pods
//	runpod no-capacity DC.. no capacity in these data centers (none: all have)
//	runpod fail STATUS N    answer the next N requests with STATUS
//	runpod slow-boot N      new pods show no public IP for N reads
//	runpod crash N          the next N pods exit while they boot
//	runpod stall DURATION   POST /pods answers DURATION after renting the pod
//	runpod terminate INDEX  remove pool dev's plain pod INDEX behind skyward's back
func cmdRunPod(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: runpod start|pods|clusters|templates|wait-pods|no-capacity|fail|slow-boot|crash|stall|terminate ...")
	}
	num := func(i int) int {
		if len(args) <= i {
			ts.Fatalf("runpod %s: missing argument", args[0])
		}
		n, err := strconv.Atoi(args[i])
		ts.Check(err)
		return n
	}
	count := func(what string, got, want int) {
		if (got == want) == neg {
			ts.Fatalf("the emulator has %d %s, want %s%d", got, what, map[bool]string{true: "not ", false: ""}[neg], want)
		}
	}
	switch args[0] {
	case "start":
		s, err := runpodtest.New(runpodtest.Options{Key: runpodKey})
		ts.Check(err)
		s.Start()
		runpodServers.Store(ts.Getenv("WORK"), s)
		ts.Defer(func() {
			runpodServers.Delete(ts.Getenv("WORK"))
			if err := s.Close(); err != nil {
				ts.Logf("runpod emulator: %v", err)
			}
		})
		ts.Setenv(runpod.EnvREST, s.URL())
		ts.Setenv(runpod.EnvAPIKey, runpodKey)
	case "pods":
		count("pods", len(runpodServer(ts).Pods()), num(1))
	case "clusters":
		count("clusters", len(runpodServer(ts).Clusters()), num(1))
	case "templates":
		count("templates", len(runpodServer(ts).Templates()), num(1))
	case "wait-pods":
		s, want := runpodServer(ts), num(1)
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if len(s.Pods()) >= want {
				return
			}
		}
		ts.Fatalf("timed out waiting for %d pods", want)
	case "no-capacity":
		runpodServer(ts).NoCapacity(args[1:]...)
	case "fail":
		runpodServer(ts).FailNext(num(1), num(2))
	case "slow-boot":
		runpodServer(ts).SlowBoot(num(1))
	case "crash":
		runpodServer(ts).CrashNext(num(1))
	case "stall":
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		runpodServer(ts).StallCreates(d)
	case "terminate":
		s, idx := runpodServer(ts), num(1)
		lin := lineageOf(ts.Getenv("WORK"))
		if len(lin) < 8 {
			ts.Fatalf("no state with a lineage in $WORK")
		}
		name := fmt.Sprintf("skyward-%s-dev-%d", lin[:8], idx)
		for _, p := range s.Pods() {
			if p.Name == name {
				ts.Check(s.Terminate(context.Background(), p.ID))
				return
			}
		}
		ts.Fatalf("no pod named %s", name)
	default:
		ts.Fatalf("runpod: unknown subcommand %q", args[0])
	}
}
