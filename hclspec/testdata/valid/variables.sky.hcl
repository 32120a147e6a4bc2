# Typed variables, validation, sensitivity.

variable "zones" {
  type        = list(string)
  default     = ["a", "b"]
  description = "Availability zones."
}

variable "sizes" {
  type    = map(number)
  default = { small = 1, large = 4 }
}

variable "settings" {
  type = object({
    name    = string
    workers = optional(number, 2)
  })
  default = { name = "x" }
}

variable "region" {
  type    = string
  default = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+-[0-9]$", var.region))
    error_message = "The region must look like us-east-1."
  }
}

variable "token" {
  type      = string
  default   = "s3cret"
  sensitive = true
}

variable "anything" {
  default = 3
}

pool "sized" {
  nodes     = var.settings.workers
  memory_gb = var.sizes["large"]
}

output "zones" { value = join(",", var.zones) }

output "token" {
  value     = var.token
  sensitive = true
}
