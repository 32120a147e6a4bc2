skyward {
  backend "local" {}
}

skyward {
  backend "s3" { # ERROR: Duplicate backend configuration
    bucket = "b"
    key    = "k"
  }
}
