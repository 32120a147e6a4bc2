// Package mototest starts moto's server (python3 -m moto.server) on
// 127.0.0.1 for tests that need S3, and creates buckets in it. Tests never
// send traffic anywhere else.
//
// Without python3 and moto a test is skipped, except when CI=true: there it
// fails, since CI must run every test.
package mototest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Env is the environment the AWS SDK needs to talk to moto: fixed test
// credentials and region, and no profile or IMDS lookups.
var Env = []string{
	"AWS_ACCESS_KEY_ID=testing",
	"AWS_SECRET_ACCESS_KEY=testing",
	"AWS_SESSION_TOKEN=testing",
	"AWS_REGION=us-east-1",
	"AWS_EC2_METADATA_DISABLED=true",
	"AWS_CONFIG_FILE=/dev/null",
	"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
}

// Server is a running moto server.
type Server struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	cmd      *exec.Cmd
	log      bytes.Buffer
}

// Available reports whether python3 can import moto, with the reason when
// it cannot.
func Available() (bool, string) {
	out, err := exec.Command("python3", "-c", "import moto, moto.server; print(moto.__version__)").CombinedOutput()
	if err != nil {
		return false, fmt.Sprintf("python3 with moto is not available: %v: %s", err, bytes.TrimSpace(out))
	}
	return true, string(bytes.TrimSpace(out))
}

// Require skips t (fails it when CI is set) without python3 and moto.
func Require(t testing.TB) {
	t.Helper()
	if ok, why := Available(); !ok {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s, and CI=true: the S3 tests must run in CI (.ci/run installs moto)", why)
		}
		t.Skip(why)
	}
}

// Start starts moto on a free port of 127.0.0.1 and waits until it
// answers. The caller stops it with Stop.
func Start() (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	s.cmd = exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			// Wait no more on exited: Stop reaps the process.
			go func() { <-exited }()
			return s, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("moto exited before answering: %v\n%s", err, s.log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			return nil, fmt.Errorf("moto did not answer on %s within 30s\n%s", s.Endpoint, s.log.String())
		}
	}
}

// Stop kills the server.
func (s *Server) Stop() {
	if s != nil && s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
}

// New starts moto for t (see Require) and stops it when t ends; it also
// sets Env for the test.
func New(t *testing.T) *Server {
	t.Helper()
	Require(t)
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	for _, kv := range Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return s
}

var bucketSeq struct {
	sync.Mutex
	n int
}

// Client returns an S3 client for the server with the test credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  aws.NewCredentialsCache(staticCreds{}),
	})
}

type staticCreds struct{}

func (staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing", SessionToken: "testing", Source: "mototest"}, nil
}

// Bucket creates a bucket with a unique name starting with prefix, with
// versioning when versioned, and returns its name.
func (s *Server) Bucket(prefix string, versioned bool) (string, error) {
	bucketSeq.Lock()
	bucketSeq.n++
	name := fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, bucketSeq.n)
	bucketSeq.Unlock()
	return name, s.CreateBucket(name, versioned)
}

// CreateBucket creates the named bucket, with versioning when versioned.
func (s *Server) CreateBucket(name string, versioned bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if versioned {
		_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(name),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
		})
		if err != nil {
			return fmt.Errorf("enable versioning on %s: %w", name, err)
		}
	}
	return nil
}
