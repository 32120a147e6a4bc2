pool "dev" {}

task "all" {
  pool   = pool.dev
  mode   = "broadcast"
  target = "head" # ERROR: Invalid use of target
  run    = "hostname"
}
