provider "aws" {
  alias  = "west"
  region = "us-west-2"
}

pool "a" {
  provider = aws.west
}

pool "b" {
  provider = aws.east # ERROR: Reference to undeclared provider
}

pool "c" {
  provider = container.gpu # ERROR: Reference to undeclared provider
}
