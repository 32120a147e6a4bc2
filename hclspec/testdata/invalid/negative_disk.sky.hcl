pool "dev" {
  disk_gb = 1 - 2 # ERROR: Invalid value for disk_gb
}
