package aws

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/providers"
)

func TestClientToken(t *testing.T) {
	a := ClientToken("lin-1", "pool.dev.node[0]", 0)
	if a != ClientToken("lin-1", "pool.dev.node[0]", 0) {
		t.Errorf("the token is not stable")
	}
	if len(a) > 64 {
		t.Errorf("token %q is longer than the 64 characters EC2 takes", a)
	}
	for name, other := range map[string]string{
		"other address": ClientToken("lin-1", "pool.dev.node[1]", 0),
		"other lineage": ClientToken("lin-2", "pool.dev.node[0]", 0),
		"next attempt":  ClientToken("lin-1", "pool.dev.node[0]", 1),
		"ambiguous":     ClientToken("lin-1pool.dev.node[0]", "", 0),
	} {
		if other == a {
			t.Errorf("%s: same token %q", name, a)
		}
	}
}

func TestUserData(t *testing.T) {
	tests := map[string]struct {
		ttl     time.Duration
		want    []string
		notWant []string
	}{
		"no ttl": {0, []string{"#!/bin/sh\n", "# skyward node pool.dev.node[1]\n", "no ttl"}, []string{"sleep", "systemd-run"}},
		"one hour": {time.Hour, []string{
			"--on-active=3600s /bin/systemctl poweroff",
			"sleep 3600; shutdown -h now || poweroff",
		}, nil},
		"fraction rounds up": {1500 * time.Millisecond, []string{"--on-active=2s", "sleep 2;"}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := UserData("pool.dev.node[1]", tc.ttl)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("user-data lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("user-data has %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestTags(t *testing.T) {
	p := &Provider{cfg: Config{Tags: map[string]string{"team": "ml", "Name": "mine"}}}
	r := providers.Resource{Address: "pool.dev.node[0]", Lineage: "lin", Labels: map[string]string{"skyward.extra": "x"}}
	got := tagMap(p.tags(r, "skyward-lin-dev-0"))
	want := map[string]string{
		"team": "ml", "Name": "skyward-lin-dev-0", "skyward.extra": "x",
		providers.LabelManaged: "true", providers.LabelLineage: "lin", providers.LabelAddress: "pool.dev.node[0]",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tags (-want +got):\n%s", d)
	}
}

var catalog = []InstanceType{
	{Name: "t3.micro", VCPUs: 2, MemoryMiB: 1024, Architectures: []string{"x86_64"}, CurrentGen: true, Spot: true},
	{Name: "t3.small", VCPUs: 2, MemoryMiB: 2048, Architectures: []string{"x86_64"}, CurrentGen: true, Spot: true},
	{Name: "t3a.small", VCPUs: 2, MemoryMiB: 2048, Architectures: []string{"x86_64"}, CurrentGen: true},
	{Name: "t2.nano", VCPUs: 1, MemoryMiB: 512, Architectures: []string{"x86_64", "i386"}, CurrentGen: true, Spot: true},
	{Name: "t4g.nano", VCPUs: 2, MemoryMiB: 512, Architectures: []string{"arm64"}, CurrentGen: true, Spot: true},
	{Name: "m1.small", VCPUs: 1, MemoryMiB: 1740, Architectures: []string{"x86_64"}, CurrentGen: false, Spot: true},
	{Name: "c6i.2xlarge", VCPUs: 8, MemoryMiB: 16384, Architectures: []string{"x86_64"}, CurrentGen: true, Spot: true},
	{Name: "m6i.2xlarge", VCPUs: 8, MemoryMiB: 32768, Architectures: []string{"x86_64"}, CurrentGen: true, Spot: true},
	{Name: "c6i.metal", VCPUs: 128, MemoryMiB: 262144, Architectures: []string{"x86_64"}, CurrentGen: true, Spot: true},
	{Name: "g4dn.xlarge", VCPUs: 4, MemoryMiB: 16384, Architectures: []string{"x86_64"}, CurrentGen: true, Spot: true, GPUs: []GPU{{Name: "T4", Count: 1}}},
	{Name: "g4dn.12xlarge", VCPUs: 48, MemoryMiB: 196608, Architectures: []string{"x86_64"}, CurrentGen: true, Spot: true, GPUs: []GPU{{Name: "T4", Count: 4}}},
}

func TestChooseInstanceType(t *testing.T) {
	tests := map[string]struct {
		spec providers.NodeSpec
		arch string
		want string
		err  string
	}{
		"smallest":           {providers.NodeSpec{}, "x86_64", "t2.nano", ""},
		"one GB":             {providers.NodeSpec{VCPUs: 1, MemoryGB: 1}, "x86_64", "t3.micro", ""},
		"cheaper family":     {providers.NodeSpec{VCPUs: 2, MemoryGB: 2}, "x86_64", "t3a.small", ""},
		"spot needs support": {providers.NodeSpec{VCPUs: 2, MemoryGB: 2, Allocation: "spot"}, "x86_64", "t3.small", ""},
		"arm":                {providers.NodeSpec{}, "arm64", "t4g.nano", ""},
		"compute":            {providers.NodeSpec{VCPUs: 8, MemoryGB: 16}, "x86_64", "c6i.2xlarge", ""},
		"gpu":                {providers.NodeSpec{Accelerator: "t4"}, "x86_64", "g4dn.xlarge", ""},
		"gpus":               {providers.NodeSpec{Accelerator: "T4:4"}, "x86_64", "g4dn.12xlarge", ""},
		"no gpu that big":    {providers.NodeSpec{Accelerator: "T4:8"}, "x86_64", "", "no x86_64 instance type has 0 vCPUs and 0 GB of memory with accelerator T4:8"},
		"too big":            {providers.NodeSpec{VCPUs: 512, MemoryGB: 1}, "x86_64", "", "no x86_64 instance type has 512 vCPUs and 1 GB of memory; lower vcpus/memory_gb or set instance_type"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ChooseInstanceType(catalog, tc.spec, tc.arch)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got.Name != tc.want {
				t.Errorf("got %q, %v; want %q", got.Name, err, tc.want)
			}
		})
	}
}

func TestCatalogCache(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "types.json")
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	writeCatalog(file, &typeCatalog{Fetched: now, Types: catalog})
	if _, ok := readCatalog(file, now.Add(23*time.Hour)); !ok {
		t.Errorf("a cache of 23h is not used")
	}
	if _, ok := readCatalog(file, now.Add(25*time.Hour)); ok {
		t.Errorf("a cache of 25h is used")
	}
	if _, ok := readCatalog(file, now.Add(-time.Hour)); ok {
		t.Errorf("a cache from the future is used")
	}
	if err := os.WriteFile(file, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := readCatalog(file, now); ok {
		t.Errorf("a corrupt cache is used")
	}
	b, _ := json.Marshal(typeCatalog{Fetched: now})
	os.WriteFile(file, b, 0o644)
	if _, ok := readCatalog(file, now); ok {
		t.Errorf("an empty cache is used")
	}
}

func obj(attrs map[string]cty.Value) cty.Value {
	full := map[string]cty.Value{}
	for name := range Factory().Schema {
		full[name] = cty.NullVal(cty.String)
	}
	full["tags"] = cty.NullVal(cty.Map(cty.String))
	for k, v := range attrs {
		full[k] = v
	}
	return cty.ObjectVal(full)
}

func TestDecodeConfig(t *testing.T) {
	c, err := DecodeConfig(obj(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{SSHUser: "ubuntu", SSHCIDR: "0.0.0.0/0", SSHAddress: "public"}
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	c, err = DecodeConfig(obj(map[string]cty.Value{"region": cty.StringVal("eu-west-1"), "tags": cty.MapVal(map[string]cty.Value{"team": cty.StringVal("ml")}),
		"ssh_proxy_command": cty.StringVal("aws ssm start-session --target %i")}))
	if err != nil || c.Region != "eu-west-1" || c.Tags["team"] != "ml" || c.SSHProxyCommand == "" {
		t.Errorf("decoded %+v, %v", c, err)
	}
}

func TestBadInput(t *testing.T) {
	tests := map[string]struct {
		attrs map[string]cty.Value
		want  string
	}{
		"region":      {map[string]cty.Value{"region": cty.StringVal("mars")}, `region = "mars" is not an AWS region name`},
		"ami":         {map[string]cty.Value{"ami": cty.StringVal("ubuntu")}, `ami = "ubuntu" is neither an AMI id`},
		"subnet":      {map[string]cty.Value{"subnet_id": cty.StringVal("sn-1")}, `subnet_id = "sn-1" is not a subnet id`},
		"cidr":        {map[string]cty.Value{"ssh_cidr": cty.StringVal("10.0.0.1")}, `ssh_cidr = "10.0.0.1" is not an IPv4 CIDR block`},
		"address":     {map[string]cty.Value{"ssh_address": cty.StringVal("elastic")}, `ssh_address = "elastic"; use "public" or "private"`},
		"user":        {map[string]cty.Value{"ssh_user": cty.StringVal("Bad User")}, `ssh_user = "Bad User" is not a valid user name`},
		"endpoint":    {map[string]cty.Value{"endpoint": cty.StringVal("localhost:5000")}, `endpoint = "localhost:5000" is not an http:// or https:// URL`},
		"reserved tg": {map[string]cty.Value{"tags": cty.MapVal(map[string]cty.Value{"skyward.lineage": cty.StringVal("x")})}, `tags["skyward.lineage"]`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeConfig(obj(tc.attrs))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line with %q", err, tc.want)
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	p := &Provider{}
	p.awsCfg.Region = "us-east-1"
	tests := map[string]string{
		"InsufficientInstanceCapacity": "AWS has no capacity for this instance type in us-east-1",
		"RequestLimitExceeded":         "AWS throttled the requests (RequestLimitExceeded) and retrying with backoff did not help",
		"VcpuLimitExceeded":            "an AWS quota of this account is exceeded in us-east-1 (VcpuLimitExceeded)",
		"InstanceLimitExceeded":        "an AWS quota of this account is exceeded",
		"InvalidAMIID.NotFound":        "AMI not found in us-east-1",
		"AuthFailure":                  "AWS refused the credentials",
	}
	for code, want := range tests {
		t.Run(code, func(t *testing.T) {
			cause := &smithy.GenericAPIError{Code: code, Message: "m"}
			err := p.apiError("run the instance", cause)
			if !strings.HasPrefix(err.Error(), "run the instance: "+want) || !errors.Is(err, cause) {
				t.Errorf("err = %v, want %q wrapping the cause", err, want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	if w := (&Provider{cfg: Config{SSHCIDR: "0.0.0.0/0"}}).Warnings(); len(w) != 1 || !strings.Contains(w[0], "whole internet") {
		t.Errorf("0.0.0.0/0: %q", w)
	}
	if w := (&Provider{cfg: Config{SSHCIDR: "203.0.113.7/32"}}).Warnings(); len(w) != 0 {
		t.Errorf("a /32: %q", w)
	}
}

func TestCheckNoCredentials(t *testing.T) {
	for _, kv := range [][2]string{{"AWS_ACCESS_KEY_ID", ""}, {"AWS_SECRET_ACCESS_KEY", ""}, {"AWS_SESSION_TOKEN", ""},
		{"AWS_PROFILE", ""}, {"AWS_CONFIG_FILE", "/dev/null"}, {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
		{"AWS_EC2_METADATA_DISABLED", "true"}, {"AWS_WEB_IDENTITY_TOKEN_FILE", ""}, {"AWS_CONTAINER_CREDENTIALS_FULL_URI", ""},
		{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ""}} {
		t.Setenv(kv[0], kv[1])
	}
	p, err := New(Config{Region: "us-east-1", Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials found; tried environment") || strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %v", err)
	}
}
