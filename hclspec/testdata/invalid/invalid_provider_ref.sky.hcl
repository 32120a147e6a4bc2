pool "dev" {
  provider = "container" # ERROR: Invalid provider reference
}
