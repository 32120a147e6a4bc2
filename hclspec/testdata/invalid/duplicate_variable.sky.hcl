variable "nodes" { default = 1 }
variable "nodes" { default = 2 } # ERROR: Duplicate variable block
