package runpodtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

const key = "rpa_emulator_test"

func start(t *testing.T) *Server {
	t.Helper()
	s, err := New(Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// call sends a request with the given bearer key and decodes the JSON
// answer into a generic value.
func call(t *testing.T, method, url, bearer string, body any) (int, any) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAuth(t *testing.T) {
	s := start(t)
	for _, bearer := range []string{"", "rpa_other"} {
		if code, _ := call(t, "GET", s.URL()+"/pods", bearer, nil); code != 401 {
			t.Errorf("GET /pods with key %q: %d, want 401", bearer, code)
		}
		if code, _ := call(t, "POST", s.GraphQLURL(), bearer, map[string]any{"query": "query { gpuTypes { id } }"}); code != 401 {
			t.Errorf("graphql with key %q: %d, want 401", bearer, code)
		}
	}
	if code, out := call(t, "GET", s.URL()+"/pods", key, nil); code != 200 || out == nil {
		t.Errorf("GET /pods with the key: %d %v", code, out)
	}
}

func TestGraphQL(t *testing.T) {
	s := start(t)
	tests := map[string]struct {
		query, vars string
		want        string // in the JSON answer
	}{
		"gpu types":        {`query GpuTypes { gpuTypes { id displayName memoryInGb } }`, `{}`, `"displayName":"H100 SXM","id":"NVIDIA H100 80GB HBM3","memoryInGb":80`},
		"myself":           {`query { myself { id } }`, `{}`, `"myself":{"clusters":[],"id":"user_`},
		"small cluster":    {`mutation CreateCluster($input: CreateClusterInput!) { createCluster(input: $input) { id } }`, `{"input":{"clusterName":"c","podCount":1,"gpuTypeId":"NVIDIA L4","gpuCountPerPod":1,"imageName":"x"}}`, `"message":"an Instant Cluster has at least 2 pods"`},
		"missing cluster":  {`mutation DeleteCluster($id: String!) { deleteCluster(input: { id: $id }) }`, `{"id":"nope"}`, `"message":"cluster nope not found"`},
		"unknown field":    {`query { pods { id } }`, `{}`, `Cannot query field \"pods\"`},
		"no capacity code": {`mutation CreateCluster($input: CreateClusterInput!) { createCluster(input: $input) { id } }`, `{"input":{"clusterName":"c","podCount":2,"gpuTypeId":"NVIDIA L4","gpuCountPerPod":1,"imageName":"x","dataCenterIds":["EU-RO-1"]}}`, `"extensions":{"code":"SUPPLY_CONSTRAINT"}`},
	}
	s.NoCapacity("EU-RO-1")
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, out := call(t, "POST", s.GraphQLURL(), key, map[string]any{"query": tc.query, "variables": json.RawMessage(tc.vars)})
			b, _ := json.Marshal(out)
			if !strings.Contains(string(b), tc.want) {
				t.Errorf("answer %s, want it to hold %s", b, tc.want)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	s := start(t)
	tmpl := map[string]any{"name": "skyward-x-dev", "imageName": "img", "ports": []string{"22/tcp"}}
	code, out := call(t, "POST", s.URL()+"/templates", key, tmpl)
	id, _ := out.(map[string]any)["id"].(string)
	if code != 200 || id == "" {
		t.Fatalf("create: %d %v", code, out)
	}
	if code, out := call(t, "POST", s.URL()+"/templates", key, tmpl); code != 400 || !strings.Contains(out.(map[string]any)["error"].(string), "unique") {
		t.Errorf("a second template of the name: %d %v", code, out)
	}
	if code, _ := call(t, "DELETE", s.URL()+"/templates/"+id, key, nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := call(t, "GET", s.URL()+"/templates/"+id, key, nil); code != 404 {
		t.Errorf("get after delete: %d", code)
	}
}

// TestPodLifecycle rents a pod (a container), reads it with REST v1's
// field names, filters by name, and deletes it; a second DELETE is 404.
func TestPodLifecycle(t *testing.T) {
	img := os.Getenv("SKYWARD_TEST_IMAGE")
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = cli.Ping(ctx)
		cancel()
		cli.Close()
	}
	if err != nil || img == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("Docker and SKYWARD_TEST_IMAGE are required in CI (docker: %v, image %q)", err, img)
		}
		t.Skipf("needs Docker and SKYWARD_TEST_IMAGE (docker: %v, image %q)", err, img)
	}
	s := start(t)
	code, out := call(t, "POST", s.URL()+"/pods", key, map[string]any{"name": "p1", "imageName": img, "computeType": "CPU",
		"vcpuCount": 2, "ports": []string{"22/tcp"}, "env": map[string]string{"PUBLIC_KEY": "ssh-ed25519 AAAA"}})
	pod, _ := out.(map[string]any)
	if code != 201 || pod["id"] == "" || pod["desiredStatus"] != "RUNNING" {
		t.Fatalf("create: %d %v", code, out)
	}
	id := pod["id"].(string)
	var got map[string]any
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, out := call(t, "GET", s.URL()+"/pods/"+id, key, nil)
		got = out.(map[string]any)
		if got["publicIp"] != "" {
			break
		}
	}
	pm, _ := got["portMappings"].(map[string]any)
	if got["publicIp"] != "127.0.0.1" || pm["22"] == nil || got["memoryInGb"] != 4.0 || got["cpuFlavorId"] != "cpu3c" {
		t.Errorf("pod %v: want publicIp 127.0.0.1, portMappings[\"22\"], 4 GB of cpu3c", got)
	}
	if _, out := call(t, "GET", s.URL()+"/pods?name=p2", key, nil); len(out.([]any)) != 0 {
		t.Errorf("name filter p2: %v", out)
	}
	if _, out := call(t, "GET", s.URL()+"/pods?name=p1", key, nil); len(out.([]any)) != 1 {
		t.Errorf("name filter p1: %v", out)
	}
	if code, _ := call(t, "DELETE", s.URL()+"/pods/"+id, key, nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := call(t, "DELETE", s.URL()+"/pods/"+id, key, nil); code != 404 {
		t.Errorf("second delete: %d, want 404", code)
	}
}
