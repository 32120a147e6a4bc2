skyward {
  backend "s3" {
    bucket   = "skyward-state"
    key      = "ci/dev.json"
    region   = "eu-west-1"
    endpoint = "http://127.0.0.1:5000"
  }
}

pool "dev" {
  nodes = 1
}
