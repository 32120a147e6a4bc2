locals {
  a = 1
}

output "b" {
  value = local.b # ERROR: Reference to undeclared local value
}
