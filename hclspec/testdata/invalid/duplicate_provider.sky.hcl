provider "container" {
  binary = "docker"
}

provider "container" { # ERROR: Duplicate provider configuration
  binary = "podman"
}

provider "aws" {
  alias  = "west"
  region = "us-west-2"
}

provider "aws" {
  alias  = "west" # ERROR: Duplicate provider configuration
  region = "us-west-1"
}
