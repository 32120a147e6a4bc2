package runpod

import (
	"os"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/internal/dockertest"
	"github.com/skyward-sh/skyward/providers/runpod/runpodtest"
)

// Set up by TestMain for the tests that need Docker.
var (
	baseImage string         // skyward-test-base:*, which has OpenSSH
	dockerCli *client.Client // shared by the emulators
	dockerErr error          // why Docker cannot be used, if it cannot
)

func TestMain(m *testing.M) {
	dockerErr = setUpDocker()
	code := m.Run()
	if dockerCli != nil {
		dockerCli.Close()
	}
	os.Exit(code)
}

func setUpDocker() error {
	var err error
	dockerCli, baseImage, err = dockertest.Connect()
	return err
}

// needDocker fails the test in CI and skips it elsewhere when Docker or the
// test base image is missing.
func needDocker(t testing.TB) {
	t.Helper()
	dockertest.Require(t, dockerErr)
}

// testKey is the emulators' API key in these tests.
const testKey = "rpa_TESTKEY_0123456789abcdef"

// emulator starts an emulator whose pods are containers, removed when
// the test ends.
func emulator(t testing.TB) *runpodtest.Server {
	t.Helper()
	needDocker(t)
	s, err := runpodtest.New(runpodtest.Options{Key: testKey, Docker: dockerCli})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("emulator: %v", err)
		}
	})
	return s
}

// config is the provider block pointing at the emulator.
func config(s *runpodtest.Server, extra map[string]cty.Value) cty.Value {
	v := map[string]cty.Value{
		"api_key":      cty.StringVal(testKey),
		"endpoint":     cty.StringVal(s.URL()),
		"cloud_type":   cty.NullVal(cty.String),
		"image":        cty.StringVal(baseImage),
		"data_centers": cty.NullVal(cty.List(cty.String)),
	}
	for k, x := range extra {
		v[k] = x
	}
	return cty.ObjectVal(v)
}

// newProvider builds a provider on the emulator with short retry waits.
func newProvider(t testing.TB, s *runpodtest.Server, extra map[string]cty.Value) *Provider {
	t.Helper()
	c, err := DecodeConfig(config(s, extra))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	p.SetBackoff(10*time.Millisecond, 50*time.Millisecond)
	return p
}
