pool "dev" {
  concurrency = 0 # ERROR: Invalid value for concurrency
}
