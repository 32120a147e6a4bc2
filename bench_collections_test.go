package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// collectionsPool is a ready 3-node pool with tasks that time the
// collection commands from a task.
func collectionsPool(b *testing.B) string {
	image := benchEnv(b)
	return applyPool(b, fmt.Sprintf(`provider "container" {
  image = %q
}

pool "bench" {
  nodes = 3
}

task "nop" {
  pool   = pool.bench
  target = 1
  run    = "true"
}

# 50 increments, one process each, timed one by one (ns, one a line).
task "incr" {
  pool   = pool.bench
  target = 1
  run    = "for i in $(seq 50); do t0=$(date +%%s%%N); skyward counter hits incr > /dev/null || exit 1; echo $(( $(date +%%s%%N) - t0 )); done"
}

# Every node puts and gets its third of 1,000 keys, 8 processes at a time.
task "kv_processes" {
  pool = pool.bench
  mode = "broadcast"
  run  = "seq $SKYWARD_NODE 3 999 | xargs -P 8 -I{} sh -c 'skyward kv put k{} v{} && test \"$(skyward kv get k{})\" = v{}'"
}

# The same with one put and one get command a node, each of them one
# operation a key, sent at once.
task "kv" {
  pool = pool.bench
  mode = "broadcast"
  run  = <<-EOT
    keys=$(seq $SKYWARD_NODE 3 999)
    skyward kv put $(for i in $keys; do echo b$i v$i; done)
    test "$(skyward kv get $(for i in $keys; do echo b$i; done))" = "$(for i in $keys; do echo v$i; done)"
  EOT
}
`, image))
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// BenchmarkCounterIncr times `skyward counter NAME incr` run by a task on
// a worker of a 3-node pool (its median over 50 runs), against the median
// of a plain `skyward run` of `true` on the same pool, in the same
// iteration.
func BenchmarkCounterIncr(b *testing.B) {
	dir := collectionsPool(b)
	skyward(b, dir, "counter", "hits", "get") // the store starts at first use
	var incr, run []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := skyward(b, dir, "run", "incr", "-json")
		var rep struct {
			Executions []struct{ Stdout string } `json:"executions"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Executions) != 1 {
			b.Fatalf("run incr: %v\n%s", err, out)
		}
		for _, l := range strings.Fields(rep.Executions[0].Stdout) {
			ns, err := strconv.ParseInt(l, 10, 64)
			if err != nil {
				b.Fatalf("bad timing %q", l)
			}
			incr = append(incr, time.Duration(ns))
		}
		for range 5 {
			start := time.Now()
			if out, err := exec.Command(binPath(), "-chdir="+dir, "run", "nop").CombinedOutput(); err != nil {
				b.Fatalf("skyward run nop: %v\n%s", err, out)
			}
			run = append(run, time.Since(start))
		}
	}
	b.StopTimer()
	mi, mr := median(incr), median(run)
	b.ReportMetric(float64(mi.Microseconds())/1000, "incr-ms")
	b.ReportMetric(float64(mr.Microseconds())/1000, "run-true-ms")
	b.ReportMetric(mi.Seconds()/mr.Seconds(), "x-run")
}

// BenchmarkKV1000 puts and gets 1,000 keys from the 3 nodes of a pool:
// on each node one `skyward kv put` of its third of the pairs and one `kv
// get` of its keys (one operation a key, up to 32 at once), and reports
// the operations a second, puts and gets counted apart, end to end.
// Target: at least 1,000.
func BenchmarkKV1000(b *testing.B) {
	benchKV(b, "kv")
}

// BenchmarkKV1000Processes is BenchmarkKV1000 with one command (one
// process) an operation, 8 at a time a node.
func BenchmarkKV1000Processes(b *testing.B) {
	benchKV(b, "kv_processes")
}

func benchKV(b *testing.B, task string) {
	dir := collectionsPool(b)
	skyward(b, dir, "kv", "put", "warm", "up") // the store starts at first use
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		out := skyward(b, dir, "run", task, "-json")
		total += time.Since(start)
		if !strings.Contains(out, `"ok": true`) {
			b.Fatalf("run %s failed:\n%.2000s", task, out)
		}
	}
	b.ReportMetric(2000*float64(b.N)/total.Seconds(), "ops/s")
}

// binPath is the skyward binary the benchmarks run as a process.
func binPath() string { return os.Getenv("SKYWARD_AGENT_BINARY") }
