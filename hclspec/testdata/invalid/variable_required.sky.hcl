variable "api_key" { # ERROR: No value for required variable
  type = string
}

variable "nodes" { # ERROR: No value for required variable
  type = number
}

pool "dev" {
  nodes = var.nodes
}
