# MPI across the pool: distributed = "mpi" runs the task once, on the
# head, with a hostfile of every node in $SKYWARD_HOSTFILE, and mpirun
# there starts its processes on the other nodes through skyward (SSH with
# the pool's key and each node's pinned host key). In this directory:
#
#   skyward apply
#   skyward run allreduce
#   skyward destroy
#
# The base image comes from base_image.auto.skyvars.

variable "base_image" {
  type        = string
  default     = "ubuntu:24.04"
  description = "Base image of every node (Debian or Ubuntu: MPI comes from apt)."
}

provider "container" {
  image = var.base_image
}

image "mpi" {
  apt      = ["openmpi-bin", "python3-mpi4py"]
  includes = ["./app"]
}

pool "dev" {
  nodes = 3
  image = image.mpi
}

# One rank a node: each contributes its rank + 1, and every rank checks
# the allreduce's sum (1 + 2 + 3 = 6). The result is rank 0's report.
task "allreduce" {
  pool        = pool.dev
  distributed = "mpi"
  timeout     = "5m"
  run         = "mpirun -np $SKYWARD_NUM_NODES -hostfile $SKYWARD_HOSTFILE python3 app/allreduce.py > $SKYWARD_RESULT_FILE"
}
