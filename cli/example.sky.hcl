# A pool of two local containers. Change `provider` to aws or runpod to run
# the same pool on a cloud.
provider "container" {
  image = "ubuntu:24.04"
}

pool "dev" {
  nodes     = 2
  vcpus     = 1
  memory_gb = 1
}

task "hello" {
  pool = pool.dev
  mode = "broadcast"
  run  = "echo Hello from $(hostname)"
}
