variable "nodes" {
  type    = number
  default = "many" # ERROR: Invalid default value for variable
}

pool "dev" {
  nodes = var.nodes
}
