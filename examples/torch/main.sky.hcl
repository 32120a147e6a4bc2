# torch.distributed across the pool: distributed = "torch" runs the task
# on every node with MASTER_ADDR (the head's private address),
# MASTER_PORT, WORLD_SIZE, NODE_RANK, NNODES and NPROC_PER_NODE (the
# pool's accelerator count, or 1), and torchrun's PET_* variables, so
# `torchrun app/train.py` needs no arguments. In this directory:
#
#   skyward apply
#   skyward run allreduce
#   skyward destroy
#
# app/allreduce.py sums every rank's rank + 1 with torch.distributed's
# all_reduce when PyTorch is installed (add it to the image's pip), and
# otherwise through a plain TCP rendezvous at MASTER_ADDR:MASTER_PORT,
# which checks the same environment without PyTorch.

variable "base_image" {
  type        = string
  default     = "ubuntu:24.04"
  description = "Base image of every node; needs python3."
}

provider "container" {
  image = var.base_image
}

image "train" {
  includes = ["./app"]
}

pool "dev" {
  nodes = 3
  image = image.train
}

task "allreduce" {
  pool        = pool.dev
  distributed = "torch"
  timeout     = "5m"
  run         = "python3 app/allreduce.py > $SKYWARD_RESULT_FILE"
}
