pool "dev" {
  nodes = 3
}

task "one" {
  pool   = pool.dev
  target = 3 # ERROR: Invalid value for target
  run    = "hostname"
}

task "two" {
  pool   = pool.dev
  target = "tail" # ERROR: Invalid value for target
  run    = "hostname"
}
