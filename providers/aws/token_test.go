package aws

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/skyward-sh/skyward/providers"
)

// TestCreateClientTokens: RunInstances carries the address's stable token;
// when AWS answers with the terminated instance of an earlier life of the
// address (a replaced node), the next token makes a new one. moto ignores
// client tokens, so a fake EC2 endpoint answers here.
func TestCreateClientTokens(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	var mu sync.Mutex
	var tokens []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		switch r.Form.Get("Action") {
		case "DescribeImages":
			fmt.Fprint(w, `<DescribeImagesResponse><imagesSet><item><imageId>ami-12345678</imageId><architecture>x86_64</architecture><rootDeviceName>/dev/sda1</rootDeviceName></item></imagesSet></DescribeImagesResponse>`)
		case "RunInstances":
			mu.Lock()
			tokens = append(tokens, r.Form.Get("ClientToken"))
			n := len(tokens)
			mu.Unlock()
			state := `<code>0</code><name>pending</name>`
			if n == 1 {
				state = `<code>48</code><name>terminated</name>`
			}
			fmt.Fprintf(w, `<RunInstancesResponse><instancesSet><item><instanceId>i-%d</instanceId><instanceState>%s</instanceState>`+
				`<tagSet><item><key>skyward.address</key><value>pool.dev.node[0]</value></item></tagSet></item></instancesSet></RunInstancesResponse>`, n, state)
		default:
			w.WriteHeader(400)
			fmt.Fprintf(w, `<Response><Errors><Error><Code>Unexpected</Code><Message>%s</Message></Error></Errors></Response>`, url.QueryEscape(r.Form.Get("Action")))
		}
	}))
	defer srv.Close()
	p, err := New(Config{Region: "us-east-1", Endpoint: srv.URL, AMI: "ami-12345678"}, WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	pool := providers.Object{Kind: providers.KindPool, ID: "sg-1", Private: map[string]string{privSG: "sg-1", privKeyName: "k", privSubnet: "subnet-1"}}
	r := providers.Resource{Kind: providers.KindNode, Address: "pool.dev.node[0]", Pool: "dev", Lineage: "lin", PoolObject: &pool,
		Node: &providers.NodeSpec{Hostname: "dev-0", InstanceType: "t3.micro"}}
	o, err := p.Create(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != "i-2" {
		t.Errorf("created %s, want the second instance i-2", o.ID)
	}
	want := []string{ClientToken("lin", "pool.dev.node[0]", 0), ClientToken("lin", "pool.dev.node[0]", 1)}
	if len(tokens) != 2 || tokens[0] != want[0] || tokens[1] != want[1] {
		t.Errorf("client tokens %q, want %q", tokens, want)
	}
}

// TestRequestLimitRetried: a throttled RunInstances is retried with
// backoff, with the same client token, before any error reaches the user.
func TestRequestLimitRetried(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	var mu sync.Mutex
	var tokens []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		switch r.Form.Get("Action") {
		case "DescribeImages":
			fmt.Fprint(w, `<DescribeImagesResponse><imagesSet><item><imageId>ami-12345678</imageId><architecture>x86_64</architecture></item></imagesSet></DescribeImagesResponse>`)
		case "RunInstances":
			mu.Lock()
			tokens = append(tokens, r.Form.Get("ClientToken"))
			n := len(tokens)
			mu.Unlock()
			if n < 3 {
				w.WriteHeader(503)
				fmt.Fprint(w, `<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors></Response>`)
				return
			}
			fmt.Fprint(w, `<RunInstancesResponse><instancesSet><item><instanceId>i-1</instanceId><instanceState><code>0</code><name>pending</name></instanceState></item></instancesSet></RunInstancesResponse>`)
		}
	}))
	defer srv.Close()
	p, err := New(Config{Region: "us-east-1", Endpoint: srv.URL, AMI: "ami-12345678"}, WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	pool := providers.Object{Kind: providers.KindPool, ID: "sg-1", Private: map[string]string{privSG: "sg-1", privKeyName: "k", privSubnet: "subnet-1"}}
	r := providers.Resource{Kind: providers.KindNode, Address: "pool.dev.node[0]", Pool: "dev", Lineage: "lin", PoolObject: &pool,
		Node: &providers.NodeSpec{Hostname: "dev-0", InstanceType: "t3.micro"}}
	o, err := p.Create(context.Background(), r)
	if err != nil || o.ID != "i-1" {
		t.Fatalf("create: %+v, %v", o, err)
	}
	if len(tokens) != 3 || tokens[0] != tokens[2] {
		t.Errorf("RunInstances tokens %q: want 3 attempts with one token", tokens)
	}
}
