pool "dev" {}

task "hello" { # ERROR: Missing run or command
  pool = pool.dev
}
