# The example of SPEC section 2, complete.

variable "nodes" {
  type    = number
  default = 3
}

variable "runpod_api_key" {
  type      = string
  default   = "rp-test"
  sensitive = true
}

provider "container" {
  binary  = "docker"
  image   = "ubuntu:24.04"
  network = ""
}

provider "aws" {
  region = "us-east-1"
}

provider "runpod" {
  api_key = var.runpod_api_key
}

image "py" {
  apt      = ["python3", "python3-venv", "jq"]
  pip      = ["requests==2.32.3"]
  env      = { MY_VAR = "it works" }
  includes = ["./src"]
  excludes = [".git", "__pycache__"]
  setup    = ["echo any extra shell step"]
}

pool "dev" {
  provider  = container
  nodes     = var.nodes
  vcpus     = 1
  memory_gb = 1
  image     = image.py
}

task "hello" {
  pool = pool.dev
  mode = "broadcast"
  run  = "echo Hello from $(hostname)"
}

task "shard_sum" {
  pool  = pool.dev
  mode  = "broadcast"
  shard = range(100)
  run   = "jq add $SKYWARD_SHARD_FILE > $SKYWARD_RESULT_FILE"
}

task "grid" {
  pool     = pool.dev
  for_each = [0.1, 0.01, 0.001]
  run      = "python3 train.py --lr $SKYWARD_EACH_VALUE"
}

output "head" { value = pool.dev.nodes[0].private_ip }
