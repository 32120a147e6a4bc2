pool "dev" {}

task "grid" {
  pool     = pool.dev
  mode     = "broadcast"
  for_each = [1, 2] # ERROR: Conflicting arguments
  run      = "echo $SKYWARD_EACH_VALUE"
}
