skyward {
  backend "s3" {
    bucket = "b"
    key    = "k"
    acl    = "private" # ERROR: Unsupported argument
  }
}
