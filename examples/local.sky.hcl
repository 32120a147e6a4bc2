# Three local containers that form one pool: the same pipeline a cloud
# runs, on your laptop. Switch `provider` to a cloud when you are ready.
#
#   skyward apply -var base_image=<a local image>
#   skyward ssh dev/1 -- hostname
#   skyward destroy

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

# What every node gets before it joins the pool: env for tasks and a setup
# step (apt, pip and includes go here too).
image "app" {
  env   = { GREETING = "Hello" }
  setup = ["echo ready > /tmp/ready"]
}

pool "dev" {
  image     = image.app
  nodes     = var.nodes
  vcpus     = 1
  memory_gb = 1
}

task "hello" {
  pool = pool.dev
  mode = "broadcast"
  run  = "echo $GREETING from $(hostname)"
}

output "head" {
  value = pool.dev.nodes[0].private_ip
}
