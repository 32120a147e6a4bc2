variable "token" {
  default   = "secret"
  sensitive = true
}

output "token" {
  value = "Bearer ${var.token}" # ERROR: Output refers to sensitive values
}
