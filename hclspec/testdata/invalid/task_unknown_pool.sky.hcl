pool "dev" {}

task "hello" {
  pool = pool.prod # ERROR: Reference to undeclared pool
  run  = "echo hi"
}
