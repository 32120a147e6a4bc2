# Two problems in one block: both are reported.
pool "dev" {
  nodes     = 2
  vcpus     = -1 # ERROR: Invalid value for vcpus
  memory_gb = -0.5 # ERROR: Invalid value for memory_gb
  disk_gb   = 10
}
