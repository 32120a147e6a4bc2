pool "dev" {
  nodes = 0 # ERROR: Invalid value for nodes
}
