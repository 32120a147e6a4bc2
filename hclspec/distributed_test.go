package hclspec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDistributedAndCollections(t *testing.T) {
	dir := writeConfig(t, map[string]string{"main.sky.hcl": `
pool "dev" {
  nodes       = 3
  collections = { replicas = 3 }
}

pool "plain" {}

task "train" {
  pool        = pool.dev
  distributed = "torch"
  run         = "torchrun train.py"
}

task "mpi" {
  pool        = pool.dev
  distributed = "mpi"
  run         = "mpirun -hostfile $SKYWARD_HOSTFILE hostname"
}

task "dask" {
  pool        = pool.dev
  target      = "head"
  distributed = "dask"
  run         = "python3 sum.py"
}

task "plain" {
  pool = pool.plain
  run  = "true"
}
`})
	cfg, diags := Load(dir, LoadOptions{})
	failOnDiags(t, cfg, diags)
	type got struct{ Mode, Target, Distributed string }
	want := map[string]got{
		"train": {ModeBroadcast, "", DistributedTorch},
		"mpi":   {ModeSingle, TargetHead, DistributedMPI},
		"dask":  {ModeSingle, TargetHead, DistributedDask},
		"plain": {ModeSingle, "", ""},
	}
	for name, w := range want {
		task := cfg.Tasks[name]
		if diff := cmp.Diff(w, got{task.Mode, task.Target, task.Distributed}); diff != "" {
			t.Errorf("task %s (-want +got):\n%s", name, diff)
		}
	}
	if r := cfg.Pools["dev"].Replicas; r != 3 {
		t.Errorf("pool dev: replicas %d, want 3", r)
	}
	if r := cfg.Pools["plain"].Replicas; r != 1 {
		t.Errorf("pool plain: replicas %d, want 1 (the default)", r)
	}
}
