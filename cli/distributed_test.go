package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skyward-sh/skyward/hclspec"
	"github.com/skyward-sh/skyward/state"
)

func TestDistributedEnv(t *testing.T) {
	ips := []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}
	nodes := make([]*state.Resource, 3)
	for i := range nodes {
		nodes[i] = &state.Resource{Attributes: map[string]any{"private_ip": ips[i]}}
	}
	tests := map[string]struct {
		task *hclspec.Task
		pool *hclspec.Pool
		node int
		want map[string]string // a subset of the env
		not  []string          // variables that must be absent
	}{
		"torch, one process a node": {
			task: &hclspec.Task{Name: "t", Mode: "broadcast", Run: "torchrun x.py", Distributed: "torch"},
			pool: &hclspec.Pool{Name: "dev", Nodes: 3},
			node: 2,
			want: map[string]string{"MASTER_ADDR": "10.0.0.2", "MASTER_PORT": "29500", "WORLD_SIZE": "3", "NODE_RANK": "2",
				"NNODES": "3", "NPROC_PER_NODE": "1", "RANK": "2", "LOCAL_RANK": "0", "PET_NNODES": "3", "PET_NODE_RANK": "2",
				"PET_NPROC_PER_NODE": "1", "PET_MASTER_ADDR": "10.0.0.2", "PET_MASTER_PORT": "29500"},
		},
		"torch, 4 accelerators a node, a port of the task's own": {
			task: &hclspec.Task{Name: "t", Mode: "broadcast", Run: "torchrun x.py", Distributed: "torch", Env: map[string]string{"MASTER_PORT": "1234"}},
			pool: &hclspec.Pool{Name: "dev", Nodes: 3, Accelerator: "A100:4"},
			node: 1,
			want: map[string]string{"MASTER_PORT": "1234", "PET_MASTER_PORT": "1234", "WORLD_SIZE": "12", "NPROC_PER_NODE": "4", "NODE_RANK": "1"},
			not:  []string{"RANK", "LOCAL_RANK"},
		},
		"mpi": {
			task: &hclspec.Task{Name: "m", Run: "mpirun true", Target: "head", Distributed: "mpi"},
			pool: &hclspec.Pool{Name: "dev", Nodes: 3},
			want: map[string]string{"SKYWARD_HOSTFILE": "/opt/skyward/mpi/hostfile", "OMPI_MCA_plm_rsh_agent": "/opt/skyward/bin/skyward agent rsh",
				"OMPI_MCA_plm_rsh_no_tree_spawn": "1", "OMPI_MCA_orte_leave_session_attached": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"},
		},
		"dask": {
			task: &hclspec.Task{Name: "d", Run: "python3 x.py", Target: "head", Distributed: "dask"},
			pool: &hclspec.Pool{Name: "dev", Nodes: 3},
			want: map[string]string{"DASK_SCHEDULER_ADDRESS": "tcp://10.0.0.2:8786"},
		},
		"none": {
			task: &hclspec.Task{Name: "p", Run: "true"},
			pool: &hclspec.Pool{Name: "dev", Nodes: 3},
			not:  []string{"MASTER_ADDR", "SKYWARD_HOSTFILE", "DASK_SCHEDULER_ADDRESS"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			jobs, _, err := taskJobs(tc.task, tc.pool, nodes)
			if err != nil {
				t.Fatal(err)
			}
			job := jobs[0]
			if tc.task.Mode == "broadcast" {
				job = jobs[tc.node]
			}
			env := job.Request(tc.node).Env
			got := map[string]string{}
			for k := range tc.want {
				got[k] = env[k]
			}
			if diff := cmp.Diff(tc.want, got, cmpEquateEmptyMap); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			for _, k := range tc.not {
				if v, ok := env[k]; ok {
					t.Errorf("%s=%q is set", k, v)
				}
			}
		})
	}
}

var cmpEquateEmptyMap = cmp.FilterValues(func(a, b map[string]string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestSlotsPerNode(t *testing.T) {
	for _, tc := range []struct {
		pool hclspec.Pool
		want int
	}{
		{hclspec.Pool{}, 1},
		{hclspec.Pool{VCPUs: 0.5}, 1},
		{hclspec.Pool{VCPUs: 2.5}, 2},
		{hclspec.Pool{VCPUs: 8, Accelerator: "T4"}, 1},
		{hclspec.Pool{Accelerator: "H100:8"}, 8},
	} {
		if got := slotsPerNode(&tc.pool); got != tc.want {
			t.Errorf("slotsPerNode(vcpus %g, accelerator %q) = %d, want %d", tc.pool.VCPUs, tc.pool.Accelerator, got, tc.want)
		}
	}
}
