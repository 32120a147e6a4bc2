pool "dev" {
  nodes = = 3 # ERROR: Invalid expression
}
