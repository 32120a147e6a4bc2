pool "dev" {
  nodes = "three" # ERROR: Incorrect attribute value type
}
