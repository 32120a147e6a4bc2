# Every problem in the file is reported at once.
variable "n" {
  type    = number
  default = 0
}

pool "dev" {
  nodes      = var.n # ERROR: Invalid value for nodes
  allocation = "cheap" # ERROR: Invalid value for allocation
  image      = image.none # ERROR: Reference to undeclared image
}

task "a" {
  pool    = pool.dev
  mode    = "broadcast"
  run     = "echo ${var.missing}" # ERROR: Reference to undeclared input variable
  retries = 1.5 # ERROR: Invalid value for retries
}

output "o" {
  value = local.nothing # ERROR: Reference to undeclared local value
}
