# Three EC2 instances that form one pool, each reached over SSH,
# bootstrapped and joined to the head by its agent. In this directory:
#
#   skyward apply
#   skyward run hello node_info shard_sum
#   skyward ssh dev/1 -- hostname
#   skyward destroy
#
# The base image comes from base_image.auto.skyvars.

variable "base_image" {
  type        = string
  default     = "ubuntu:24.04"
  description = "Base image of every node."
}

variable "nodes" {
  type    = number
  default = 3

  validation {
    condition     = var.nodes >= 1 && var.nodes <= 16
    error_message = "A local pool has between 1 and 16 nodes."
  }
}

provider "container" {
  image = var.base_image
}

# The pool below runs on EC2: region and credentials come from the AWS
# SDK's default chain (AWS_REGION, AWS_PROFILE, ...); see "Moving a pool
# to AWS" in the README for the other arguments.
provider "aws" {}

# What every node gets before it joins the pool: env for tasks and a setup
# step (apt, pip and includes go here too; see examples/image).
image "app" {
  env   = { MY_VAR = "it works" }
  setup = ["echo ready > /tmp/ready"]
}

pool "dev" {
  provider  = aws
  image     = image.app
  nodes     = var.nodes
  vcpus     = 1
  memory_gb = 1
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
