skyward {
  backend "gcs" { # ERROR: Unsupported backend type
  }
}
