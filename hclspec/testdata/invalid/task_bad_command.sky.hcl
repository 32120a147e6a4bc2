pool "dev" {}

task "a" {
  pool    = pool.dev
  command = "echo hi" # ERROR: Incorrect attribute value type
}

task "b" {
  pool      = pool.dev
  command   = []  # ERROR: Invalid value for command
  fail_fast = "sometimes" # ERROR: Incorrect attribute value type
}
