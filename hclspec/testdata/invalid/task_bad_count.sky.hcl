pool "dev" {}

task "n" {
  pool  = pool.dev
  count = -2 # ERROR: Invalid value for count
  run   = "true"
}
