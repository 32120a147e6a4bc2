provider "aws" {
  alias  = "us west" # ERROR: Invalid provider alias
  region = "us-west-2"
}
