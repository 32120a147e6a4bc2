# Integration tests in CI against a real local pool: apply once, gate on a
# clean plan, run the tests, destroy always. The README has the GitHub
# Actions workflow that drives it; by hand, in this directory:
#
#   skyward apply -auto-approve
#   skyward plan -detailed-exitcode
#   skyward run double -json | jq -e '.executions[0].result == 10'
#   skyward destroy -auto-approve
#
# The base image comes from base_image.auto.skyvars.

variable "base_image" {
  type    = string
  default = "ubuntu:24.04"
}

variable "x" {
  type    = number
  default = 5
}

provider "container" {
  image = var.base_image
}

pool "ci" {
  nodes     = 2
  vcpus     = 1
  memory_gb = 1
}

# double on a single node: the result is 10 for x = 5.
task "double" {
  pool = pool.ci
  env  = { X = var.x }
  run  = "echo $((X * 2)) > $SKYWARD_RESULT_FILE"
}

# double on every node: every result is 10 for x = 5.
task "double_all" {
  pool = pool.ci
  mode = "broadcast"
  env  = { X = var.x }
  run  = "echo $((X * 2)) > $SKYWARD_RESULT_FILE"
}
