package agent

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// fakeServeEnv, set in its environment, makes the test binary stand in
// for `skyward agent serve`: a process of that command line that ignores
// SIGTERM and runs until killed.
const fakeServeEnv = "SKYWARD_TEST_FAKE_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeServeEnv) == "1" {
		signal.Ignore(syscall.SIGTERM)
		for {
			time.Sleep(time.Hour)
		}
	}
	os.Exit(m.Run())
}
