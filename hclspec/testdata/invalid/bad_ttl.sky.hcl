pool "dev" {
  ttl = "2 hours" # ERROR: Invalid value for ttl
}
