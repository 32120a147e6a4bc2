pool "dev" {}

task "slow" {
  pool    = pool.dev
  run     = "sleep 10"
  timeout = "10 minutes" # ERROR: Invalid value for timeout
}
