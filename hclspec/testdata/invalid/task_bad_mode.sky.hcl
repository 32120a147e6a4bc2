pool "dev" {}

task "hello" {
  pool = pool.dev
  mode = "all" # ERROR: Invalid task mode
  run  = "echo hi"
}
