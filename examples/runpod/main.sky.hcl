# The pool of examples/local on RunPod: three GPU pods that form one
# Instant Cluster, each reached over SSH as root, bootstrapped and joined
# to the head over the cluster's private network. The differences from
# examples/local are the provider block and the pool's provider and
# accelerator. With RUNPOD_API_KEY set, in this directory:
#
#   skyward apply
#   skyward run hello node_info shard_sum
#   skyward ssh dev/1 -- hostname
#   skyward destroy
#
# A pool of several nodes rents a whole Instant Cluster for as long as it
# is applied: see "Moving a pool to RunPod" in the README for what it
# costs, and for trying this example on the in-repo emulator instead.

variable "base_image" {
  type        = string
  default     = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
  description = "Base image of every pod: one whose start script runs OpenSSH with PUBLIC_KEY, as RunPod's own images do."
}

variable "accelerator" {
  type        = string
  default     = "NVIDIA H100 80GB HBM3:8"
  description = "GPU type and count of every pod (RunPod's GPU type ids)."
}

variable "nodes" {
  type    = number
  default = 3

  validation {
    condition     = var.nodes >= 1 && var.nodes <= 16
    error_message = "A pool has between 1 and 16 nodes."
  }
}

provider "runpod" {
  image = var.base_image
}

# What every node gets before it joins the pool: env for tasks and a setup
# step (apt, pip and includes go here too; see examples/image).
image "app" {
  env   = { MY_VAR = "it works" }
  setup = ["echo ready > /tmp/ready"]
}

pool "dev" {
  provider    = runpod
  accelerator = var.accelerator
  image       = image.app
  nodes       = var.nodes
  vcpus       = 1
  memory_gb   = 1
}

# skyward run hello: every node says hello, in node order.
task "hello" {
  pool = pool.dev
  mode = "broadcast"
  run  = "echo Hello from $(hostname)"
}

# skyward run check_env: the image's env reaches tasks; the result is
# "it works".
task "check_env" {
  pool = pool.dev
  run  = "echo \"$MY_VAR\" > $SKYWARD_RESULT_FILE"
}

# skyward run node_info: each node reports where it stands in the pool.
task "node_info" {
  pool = pool.dev
  mode = "broadcast"
  run  = <<-EOT
    printf '{"node": %s, "total_nodes": %s, "is_head": %s}' \
      "$SKYWARD_NODE" "$SKYWARD_NUM_NODES" "$SKYWARD_IS_HEAD" > "$SKYWARD_RESULT_FILE"
  EOT
}

# skyward run shard_sum: node i gets the items i, i+N, i+2N, ... of
# range(100) and sums them; the partial sums add up to 4950.
task "shard_sum" {
  pool  = pool.dev
  mode  = "broadcast"
  shard = range(100)
  run   = "tr -d '[] ' < $SKYWARD_SHARD_FILE | tr ',' '\\n' | awk '{ s += $1 } END { print s + 0 }' > $SKYWARD_RESULT_FILE"
}

output "head" {
  value = pool.dev.nodes[0].private_ip
}
