variable "bucket" {
  default = "b"
}

skyward {
  backend "s3" {
    bucket = var.bucket # ERROR: Variables not allowed
    key    = "k"
  }
}
