pool "dev" {}

task "flaky" {
  pool    = pool.dev
  run     = "true"
  retries = -1 # ERROR: Invalid value for retries
}
