variable "n" {
  default = 1.5
}

pool "dev" {
  nodes = var.n # ERROR: Invalid value for nodes
}
