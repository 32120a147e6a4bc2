provider "aws" {
  region = var.region # ERROR: Reference to undeclared input variable
  zone   = "a" # ERROR: Unsupported argument
}
