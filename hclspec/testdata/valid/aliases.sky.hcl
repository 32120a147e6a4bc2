# Several configurations of one provider, told apart by alias; the built-in
# container provider used with no block at all.

provider "aws" {
  region = "us-east-1"
}

provider "aws" {
  alias  = "west"
  region = "us-west-2"
}

pool "east" {
  provider      = aws
  nodes         = 2
  instance_type = "t3.small"
  allocation    = "spot"
  ttl           = "1h30m"
}

pool "west" {
  provider    = aws.west
  nodes       = 1
  accelerator = "T4"
  disk_gb     = 100
  concurrency = 4
}

pool "local" {
  provider = container
}

pool "default" {}

task "ping" {
  pool = pool.west
  run  = "true"
}
