cluster "dev" { # ERROR: Unsupported block type
  nodes = 1
}
