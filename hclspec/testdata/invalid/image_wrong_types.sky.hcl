image "py" {
  apt = "jq" # ERROR: Incorrect attribute value type
  env = { A = ["x"] } # ERROR: Incorrect attribute value type
}
