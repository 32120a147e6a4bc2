pool "dev" {}

pool "dev" { # ERROR: Duplicate pool block
  nodes = 2
}
