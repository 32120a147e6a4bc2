# Two cycles, both reported; the local that depends on them is not.
locals {
  a    = local.b + 1 # ERROR: Cycle in local values
  b    = local.a * 2
  self = "${local.self}!" # ERROR: Cycle in local values
  c    = local.a
}

pool "dev" {
  nodes = local.c
}
