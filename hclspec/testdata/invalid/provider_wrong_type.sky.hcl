provider "aws" {
  region = ["us-east-1"] # ERROR: Incorrect attribute value type
}
