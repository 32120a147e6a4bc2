pool "a" {}

pool "b" {
  nodes = length(pool.a.nodes) # ERROR: Value not known until apply
}
