pool "huge" {
  nodes = 1e9 # ERROR: Invalid value for nodes
}

pool "dev" {}

task "many" {
  pool  = pool.dev
  count = 1e12 # ERROR: Invalid value for count
  run   = "true"
}

task "each" {
  pool     = pool.dev
  for_each = flatten([for i in range(11) : range(1000)]) # ERROR: Invalid value for for_each
  run      = "true"
}
