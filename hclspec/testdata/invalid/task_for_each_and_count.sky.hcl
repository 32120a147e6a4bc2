pool "dev" {}

task "grid" {
  pool     = pool.dev
  for_each = [1, 2]
  count    = 2 # ERROR: Conflicting arguments
  run      = "echo $SKYWARD_EACH_VALUE"
}
