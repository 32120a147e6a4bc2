pool "dev" {}

task "hello" {
  pool    = pool.dev
  run     = "echo hi"
  command = ["echo", "hi"] # ERROR: Conflicting arguments
}
