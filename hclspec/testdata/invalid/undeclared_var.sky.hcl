pool "dev" {
  nodes = var.node_count # ERROR: Reference to undeclared input variable
}
