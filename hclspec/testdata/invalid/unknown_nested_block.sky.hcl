pool "dev" {
  nodes = 1
  disk { # ERROR: Unsupported block type
    size = 10
  }
}
