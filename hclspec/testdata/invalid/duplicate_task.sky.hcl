pool "dev" {}

task "hello" {
  pool = pool.dev
  run  = "echo 1"
}

task "hello" { # ERROR: Duplicate task block
  pool = pool.dev
  run  = "echo 2"
}
