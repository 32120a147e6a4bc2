variable "region" {
  type    = string
  default = "mars-1" # ERROR: Invalid value for variable

  validation {
    condition     = startswith(var.region, "us-")
    error_message = "The region must be in the US."
  }
}
