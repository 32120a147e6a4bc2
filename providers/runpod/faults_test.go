package runpod

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/skyward-sh/skyward/cluster"
	"github.com/skyward-sh/skyward/providers"
	"github.com/skyward-sh/skyward/providers/providertest"
	"github.com/skyward-sh/skyward/providers/runpod/runpodtest"
)

// nodeRes is node index of pool "dev" for lineage, with a fresh key.
func nodeRes(t *testing.T, lineage string, index int, spec providers.NodeSpec) providers.Resource {
	t.Helper()
	_, pub, err := cluster.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	spec.Hostname = "dev-" + string(rune('0'+index))
	spec.AuthorizedKey = pub
	return providers.Resource{Kind: providers.KindNode, Address: providers.NodeAddress("dev", index), Pool: "dev",
		Index: index, Lineage: lineage, Node: &spec}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func dcList(dcs ...string) map[string]cty.Value {
	vals := make([]cty.Value, len(dcs))
	for i, dc := range dcs {
		vals[i] = cty.StringVal(dc)
	}
	return map[string]cty.Value{"data_centers": cty.ListVal(vals)}
}

// TestNoCapacity: with no capacity in the first data center the pod goes
// to the next; with none anywhere Create fails with one line naming what
// was asked and where, and nothing is rented.
func TestNoCapacity(t *testing.T) {
	s := emulator(t)
	ctx := ctxT(t)
	lin := providertest.Lineage(t)
	p := newProvider(t, s, dcList("EU-RO-1", "US-KS-2"))

	s.NoCapacity("EU-RO-1")
	o, err := p.Create(ctx, nodeRes(t, lin, 0, providers.NodeSpec{Accelerator: "NVIDIA L4"}))
	if err != nil {
		t.Fatal(err)
	}
	pods := s.Pods()
	if len(pods) != 1 || pods[0].ID != o.ID || pods[0].DataCenterID != "US-KS-2" {
		t.Fatalf("pods %+v, want one in US-KS-2", pods)
	}

	s.NoCapacity("EU-RO-1", "US-KS-2")
	_, err = p.Create(ctx, nodeRes(t, lin, 1, providers.NodeSpec{Accelerator: "NVIDIA L4:2"}))
	if err == nil {
		t.Fatal("create with no capacity anywhere succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"no capacity for 2 x NVIDIA L4", "SECURE cloud", "EU-RO-1, US-KS-2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is more than one line: %q", msg)
	}
	if n := len(s.Pods()); n != 1 {
		t.Errorf("%d pods after the failed create, want 1", n)
	}
	if err := p.Delete(ctx, o); err != nil {
		t.Fatal(err)
	}
}

// TestBadKey: a key RunPod refuses fails Check and Create with one line
// that names neither key, and rents nothing.
func TestBadKey(t *testing.T) {
	s := emulator(t)
	ctx := ctxT(t)
	const wrong = "rpa_WRONG_KEY_must_not_leak_42"
	p := newProvider(t, s, map[string]cty.Value{"api_key": cty.StringVal(wrong)})
	errs := map[string]error{"check": p.Check(ctx)}
	_, errs["create"] = p.Create(ctx, nodeRes(t, providertest.Lineage(t), 0, providers.NodeSpec{VCPUs: 1}))
	_, errs["list"] = p.List(ctx, providertest.Lineage(t))
	for what, err := range errs {
		if !errors.Is(err, errUnauthorized) {
			t.Errorf("%s: %v, want the key refused", what, err)
			continue
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %q holds a key or more than one line", what, err)
		}
	}
	if n := len(s.Pods()); n != 0 {
		t.Errorf("%d pods rented with a refused key", n)
	}
	// No key at all is caught before any request.
	t.Setenv(EnvAPIKey, "")
	none := newProvider(t, s, map[string]cty.Value{"api_key": cty.NullVal(cty.String)})
	if err := none.Check(ctx); err == nil || !strings.Contains(err.Error(), "no API key") {
		t.Errorf("check without a key: %v", err)
	}
	t.Setenv(EnvAPIKey, testKey)
	fromEnv := newProvider(t, s, map[string]cty.Value{"api_key": cty.NullVal(cty.String)})
	if err := fromEnv.Check(ctx); err != nil {
		t.Errorf("check with the key from %s: %v", EnvAPIKey, err)
	}
}

// TestRetries: bursts of 429 and 503 are retried; a failure that lasts
// gives up after a bounded number of attempts.
func TestRetries(t *testing.T) {
	s := emulator(t)
	ctx := ctxT(t)
	lin := providertest.Lineage(t)
	p := newProvider(t, s, nil)
	s.FailNext(429, 3)
	o, err := p.Create(ctx, nodeRes(t, lin, 0, providers.NodeSpec{VCPUs: 1}))
	if err != nil {
		t.Fatalf("create through a 429 burst: %v", err)
	}
	s.FailNext(503, 2)
	if _, err := p.Wait(ctx, o); err != nil {
		t.Fatalf("wait through a 503 burst: %v", err)
	}
	s.FailNext(503, 1000)
	start := len(s.Requests())
	_, err = p.List(ctx, lin)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "gave up after 6 attempts") {
		t.Errorf("list through an outage: %v", err)
	}
	s.FailNext(0, 0)
	if n := len(s.Requests()) - start; n != 0 {
		// Failed requests are answered before they are recorded.
		t.Logf("%d requests recorded during the outage", n)
	}
	if n := len(s.Pods()); n != 1 {
		t.Errorf("%d pods after retried creates, want 1", n)
	}
	if err := p.Delete(ctx, o); err != nil {
		t.Fatal(err)
	}
}

// TestSlowBoot: a pod without a public IP yet does not run for skyward;
// Wait returns once it has one.
func TestSlowBoot(t *testing.T) {
	s := emulator(t)
	ctx := ctxT(t)
	p := newProvider(t, s, nil)
	s.SlowBoot(4)
	o, err := p.Create(ctx, nodeRes(t, providertest.Lineage(t), 0, providers.NodeSpec{VCPUs: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Delete(ctx, o)
	got, err := p.Read(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if got.Running || !got.SSH.IsZero() {
		t.Errorf("a pod without a public IP reads as running: %+v", got)
	}
	got, err = p.Wait(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Running || got.SSH.Host != "127.0.0.1" || got.SSH.Port == 0 || got.SSH.User != "root" {
		t.Errorf("after the slow boot: %+v", got)
	}
}

// TestPodExits: a pod whose start command fails fails its node, with
// RunPod's status change in the error.
func TestPodExits(t *testing.T) {
	s := emulator(t)
	ctx := ctxT(t)
	p := newProvider(t, s, nil)
	s.CrashNext(1)
	o, err := p.Create(ctx, nodeRes(t, providertest.Lineage(t), 0, providers.NodeSpec{VCPUs: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Delete(ctx, o)
	_, err = p.Wait(ctx, o)
	if err == nil {
		t.Fatal("wait for a pod that exits succeeded")
	}
	for _, want := range []string{"exited while booting", "EXITED", "Exited with code 3", "console"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestDeleteGone: a pod removed behind skyward's back is deleted (404 is
// success), and Read says it is not found.
func TestDeleteGone(t *testing.T) {
	s := emulator(t)
	ctx := ctxT(t)
	p := newProvider(t, s, nil)
	o, err := p.Create(ctx, nodeRes(t, providertest.Lineage(t), 0, providers.NodeSpec{VCPUs: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Terminate(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(ctx, o); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("read of a terminated pod: %v", err)
	}
	if err := p.Delete(ctx, o); err != nil {
		t.Errorf("delete of a terminated pod: %v", err)
	}
	reqs := s.Requests()
	if reqs[len(reqs)-1] != "DELETE /v1/pods/"+o.ID {
		t.Errorf("last request %q, want the DELETE", reqs[len(reqs)-1])
	}
}

// TestClusterNodes: nodes of a pool of two share one Instant Cluster,
// with private addresses on its network; a node whose pod is gone
// cannot be recreated alone, and the error says how to go on.
func TestClusterNodes(t *testing.T) {
	s := emulator(t)
	ctx := ctxT(t)
	p := newProvider(t, s, nil)
	lin := providertest.Lineage(t)
	pool, err := p.Create(ctx, providers.Resource{Kind: providers.KindPool, Address: "pool.dev", Pool: "dev", Index: -1, Lineage: lin, PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	spec := providers.NodeSpec{Accelerator: "NVIDIA H100 80GB HBM3:2"}
	var objs []providers.Object
	for i := range 2 {
		r := nodeRes(t, lin, i, spec)
		r.PoolSize, r.PoolObject = 2, &pool
		o, err := p.Create(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if o, err = p.Wait(ctx, o); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	cls := s.Clusters()
	if len(cls) != 1 || len(cls[0].Pods) != 2 || cls[0].Name != poolName(lin, "dev") || cls[0].GPUCountPerPod != 2 {
		t.Fatalf("clusters %+v, want one of 2 pods named %s", cls, poolName(lin, "dev"))
	}
	if objs[0].PrivateIP == "" || objs[1].PrivateIP == "" || objs[0].PrivateIP == objs[1].PrivateIP {
		t.Errorf("private addresses %q and %q", objs[0].PrivateIP, objs[1].PrivateIP)
	}
	list, err := p.List(ctx, lin)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range list {
		got[o.Address] = o.ID
	}
	if len(got) != 3 || got["pool.dev.node[0]"] != objs[0].ID || got["pool.dev.node[1]"] != objs[1].ID || got["pool.dev"] != pool.ID {
		t.Errorf("list %v", got)
	}

	if err := p.Delete(ctx, objs[1]); err != nil {
		t.Fatal(err)
	}
	r := nodeRes(t, lin, 1, spec)
	r.PoolSize, r.PoolObject = 2, &pool
	if _, err := p.Create(ctx, r); err == nil || !strings.Contains(err.Error(), "-replace=pool.dev") {
		t.Errorf("recreating one pod of a cluster: %v", err)
	}
	if err := p.Delete(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if len(s.Pods()) != 0 || len(s.Clusters()) != 0 || len(s.Templates()) != 0 {
		t.Errorf("after deleting the pool: pods %+v, clusters %+v, templates %+v", s.Pods(), s.Clusters(), s.Templates())
	}
	if _, err := p.Read(ctx, pool); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("read of a deleted pool: %v", err)
	}
}

// TestClusterNoCapacity: a cluster tries the data centers in order too.
func TestClusterNoCapacity(t *testing.T) {
	s := emulator(t)
	ctx := ctxT(t)
	p := newProvider(t, s, dcList("EU-RO-1", "US-TX-3"))
	s.NoCapacity("EU-RO-1", "US-TX-3")
	r := nodeRes(t, providertest.Lineage(t), 0, providers.NodeSpec{Accelerator: "NVIDIA H100 80GB HBM3:8"})
	r.PoolSize = 3
	_, err := p.Create(ctx, r)
	if err == nil || !strings.Contains(err.Error(), "no capacity for an Instant Cluster of 3 pods of 8 x NVIDIA H100 80GB HBM3") ||
		!strings.Contains(err.Error(), "EU-RO-1, US-TX-3") {
		t.Errorf("cluster without capacity: %v", err)
	}
	if len(s.Clusters()) != 0 {
		t.Errorf("a cluster was left: %+v", s.Clusters())
	}
}

// TestValidateNodes checks nodes at plan time against RunPod's GPU types.
func TestValidateNodes(t *testing.T) {
	s, err := runpodtest.New(runpodtest.Options{Key: testKey, Docker: dockerCli})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	p := newProvider(t, s, nil)
	tests := map[string]struct {
		spec providers.NodeSpec
		want string // "" for no error
	}{
		"gpu":            {providers.NodeSpec{Hostname: "dev-0", Accelerator: "NVIDIA GeForce RTX 4090:2", MemoryGB: 64}, ""},
		"cpu":            {providers.NodeSpec{Hostname: "dev-0", VCPUs: 4, MemoryGB: 16}, ""},
		"spot gpu":       {providers.NodeSpec{Hostname: "dev-0", Accelerator: "NVIDIA L4", Allocation: "spot"}, ""},
		"close names":    {providers.NodeSpec{Hostname: "dev-0", Accelerator: "H100"}, `dev-0: accelerator "H100" is not a RunPod GPU type; did you mean "NVIDIA H100 80GB HBM3"?`},
		"typo":           {providers.NodeSpec{Hostname: "dev-0", Accelerator: "NVIDIA GeForce RTX 4900"}, `did you mean "NVIDIA GeForce RTX 4090"`},
		"count":          {providers.NodeSpec{Hostname: "dev-0", Accelerator: "NVIDIA L4:9"}, "the count after \":\" must be a whole number from 1 to 8"},
		"spot cpu":       {providers.NodeSpec{Hostname: "dev-0", Allocation: "spot"}, "only GPU pods as interruptible"},
		"memory":         {providers.NodeSpec{Hostname: "dev-0", VCPUs: 2, MemoryGB: 64}, "at most 8 GB per vCPU"},
		"cluster of cpu": {providers.NodeSpec{Hostname: "dev-1", VCPUs: 2}, "Instant Cluster on RunPod, which needs GPUs"},
		"instance type":  {providers.NodeSpec{Hostname: "dev-0", InstanceType: "m5.large"}, "RunPod has no instance types"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := p.ValidateNodes(context.Background(), []providers.NodeSpec{tc.spec})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
	if got := s.Requests(); len(got) != 1 || got[0] != "graphql gpuTypes" {
		t.Errorf("requests %v, want one gpuTypes query for all checks", got)
	}
}

// TestValidateOneLinePerProblem: the nodes of a pool with the same
// problem get one line.
func TestValidateOneLinePerProblem(t *testing.T) {
	s, err := runpodtest.New(runpodtest.Options{Key: testKey, Docker: dockerCli})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	p := newProvider(t, s, nil)
	var nodes []providers.NodeSpec
	for _, h := range []string{"dev-0", "dev-1", "dev-2"} {
		nodes = append(nodes, providers.NodeSpec{Hostname: h, Accelerator: "A6000:2"})
	}
	err = p.ValidateNodes(context.Background(), nodes)
	want := `dev-0, dev-1, dev-2: accelerator "A6000" is not a RunPod GPU type; did you mean "NVIDIA RTX A6000"?`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

// TestWaitBatches: pods booting at once are polled together, one GET
// /pods a poll for all of them, never one GET a pod.
func TestWaitBatches(t *testing.T) {
	s := emulator(t)
	ctx := ctxT(t)
	lin := providertest.Lineage(t)
	p := newProvider(t, s, nil)
	const hidden = 3
	s.SlowBoot(hidden)
	var objs []providers.Object
	for i := range 3 {
		o, err := p.Create(ctx, nodeRes(t, lin, i, providers.NodeSpec{VCPUs: 1}))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Delete(ctx, o)
		objs = append(objs, o)
	}
	start := len(s.Requests())
	var wg sync.WaitGroup
	errs := make([]error, len(objs))
	for i, o := range objs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got providers.Object
			got, errs[i] = p.Wait(ctx, o)
			if errs[i] == nil && !got.Running {
				errs[i] = fmt.Errorf("%s does not run after Wait", o.ID)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	lists, others := 0, []string{}
	for _, r := range s.Requests()[start:] {
		if r == "GET /v1/pods" {
			lists++
		} else {
			others = append(others, r)
		}
	}
	if len(others) > 0 {
		t.Errorf("the waits made other requests than GET /v1/pods: %v", others)
	}
	// Every pod needs hidden+1 reads once booted, and each list reads
	// every pod: polled one by one, the three would take at least
	// 3*(hidden+1) lists.
	if lists < hidden+1 || lists >= 3*(hidden+1) {
		t.Errorf("the waits listed the pods %d times; want from %d to %d, all three polled together", lists, hidden+1, 3*(hidden+1)-1)
	}
}
