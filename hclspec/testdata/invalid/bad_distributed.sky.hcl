pool "dev" {
  nodes = 2
}

task "unknown" {
  pool        = pool.dev
  distributed = "spark" # ERROR: Invalid value for distributed
  run         = "true"
}

task "torch_single" {
  pool        = pool.dev
  mode        = "single" # ERROR: Conflicting arguments
  distributed = "torch"
  run         = "true"
}

task "mpi_broadcast" {
  pool        = pool.dev
  mode        = "broadcast" # ERROR: Conflicting arguments
  distributed = "mpi"
  run         = "true"
}

task "dask_count" {
  pool        = pool.dev
  count       = 2 # ERROR: Conflicting arguments
  distributed = "dask"
  run         = "true"
}
