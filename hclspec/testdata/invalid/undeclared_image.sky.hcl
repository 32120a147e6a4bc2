image "py" {}

pool "dev" {
  image = image.python # ERROR: Reference to undeclared image
}
