# Dask across the pool: distributed = "dask" starts a scheduler on the
# head and a worker on every node, waits until all of them joined, then
# runs the task once, on the head, with DASK_SCHEDULER_ADDRESS set; the
# scheduler and workers stop when the task ends. In this directory:
#
#   skyward apply
#   skyward run sum
#   skyward destroy
#
# The base image comes from base_image.auto.skyvars.

variable "base_image" {
  type        = string
  default     = "ubuntu:24.04"
  description = "Base image of every node (Debian or Ubuntu: Dask comes from apt)."
}

provider "container" {
  image = var.base_image
}

image "dask" {
  apt      = ["python3-distributed"]
  includes = ["./app"]
}

pool "dev" {
  nodes = 3
  image = image.dask
}

# Sums 1..1000 in chunks spread over every worker; the result says which
# workers did the work.
task "sum" {
  pool        = pool.dev
  distributed = "dask"
  timeout     = "5m"
  run         = "python3 app/sum.py > $SKYWARD_RESULT_FILE"
}
