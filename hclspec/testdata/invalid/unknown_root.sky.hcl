pool "dev" {}

task "t" {
  pool = pool.dev
  run  = "echo ${each.value}" # ERROR: Unknown variable
}
