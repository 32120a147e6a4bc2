# A pool of two local containers, each running skyward's agent. Next:
#   skyward plan
#   skyward apply
#   skyward run hello
#   skyward destroy
provider "container" {
  # The base image of every node: any Linux image present locally (or
  # pullable) works.
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
