# The seed's CI tests for examples/ci.sky.hcl, run by `skyward test`:
# the pool is applied once for every run and destroyed afterwards.

# double on one node: 5 doubled is 10.
run "double_single" {
  task = task.double
  vars = { x = 5 }

  assert {
    condition     = result.exit_code == 0 && result.result == 10
    error_message = "double(5) on one node returned ${jsonencode(result.result)}, want 10"
  }
}

# double on every node: 10 everywhere.
run "double_broadcast" {
  task = task.double_all
  vars = { x = 5 }

  assert {
    condition     = length(results) == 2
    error_message = "double_all ran ${length(results)} times, want once on each of the 2 nodes"
  }

  assert {
    condition     = length([for r in results : r if r.result != 10]) == 0
    error_message = "double(5) on every node returned ${jsonencode(results[*].result)}, want 10 on each"
  }
}
