pool "dev" {}

task "empty" {
  pool = pool.dev
  run  = "  " # ERROR: Invalid value for run
}

task "nothing" {
  pool    = pool.dev
  command = [""] # ERROR: Invalid value for command
}

task "env" {
  pool = pool.dev
  run  = "true"
  env  = { "A=B" = "1" } # ERROR: Invalid environment variable name
}
