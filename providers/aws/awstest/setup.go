package awstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/docker/docker/client"

	"github.com/skyward-sh/skyward/internal/mototest"
)

// Env is one test's moto, Booter and subnet.
type Env struct {
	Moto   *mototest.Server
	Booter *Booter
	// Subnet is a subnet of its own VPC with a Docker network behind it.
	Subnet string
	// AMI is one of moto's images, also published under AMIParameter.
	AMI string
}

// RequireDocker skips t without a Docker daemon (fails it when CI=true).
func RequireDocker(t testing.TB) {
	t.Helper()
	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = dc.Ping(ctx)
		cancel()
		dc.Close()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker is not reachable (%v), and CI=true: the aws tests must run in CI", err)
		}
		t.Skipf("Docker is not reachable: %v", err)
	}
}

// Image is the test base image: SKYWARD_TEST_IMAGE, else the one
// testdata/mkbaseimage.sh builds.
func Image(t testing.TB) string {
	t.Helper()
	if img := os.Getenv("SKYWARD_TEST_IMAGE"); img != "" {
		return img
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "mkbaseimage.sh")
	out, err := exec.Command("bash", script).Output()
	if err != nil {
		t.Fatalf("build the test base image: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// AMIParameter is an SSM parameter Setup publishes Env.AMI under: moto
// refuses to create the public /aws/service/... parameters, which AWS
// itself publishes.
const AMIParameter = "/skyward-test/ubuntu/ami-id"

// Setup starts moto (setting the SDK's test environment), a Booter and a
// subnet for t, and publishes one of moto's AMIs under AMIParameter.
func Setup(t *testing.T) *Env {
	t.Helper()
	moto := mototest.New(t)
	RequireDocker(t)
	e := &Env{Moto: moto, Booter: New(t, moto.Endpoint, Image(t))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if e.Subnet, err = e.Booter.Subnet(ctx); err != nil {
		t.Fatal(err)
	}
	if e.AMI, err = SeedAMI(ctx, moto.Endpoint); err != nil {
		t.Fatal(err)
	}
	return e
}

// SeedAMI publishes one of moto's x86_64 images under AMIParameter and
// returns its id.
func SeedAMI(ctx context.Context, endpoint string) (string, error) {
	c := EC2(endpoint)
	imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{
		{Name: sdk.String("architecture"), Values: []string{"x86_64"}}}})
	if err != nil {
		return "", err
	}
	if len(imgs.Images) == 0 {
		return "", fmt.Errorf("moto has no x86_64 image")
	}
	ami := sdk.ToString(imgs.Images[0].ImageId)
	s := ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: sdk.String(endpoint), Credentials: c.Options().Credentials})
	_, err = s.PutParameter(ctx, &ssm.PutParameterInput{Name: sdk.String(AMIParameter), Value: sdk.String(ami),
		Type: ssmtypes.ParameterTypeString, Overwrite: sdk.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("seed %s: %w", AMIParameter, err)
	}
	return ami, nil
}
