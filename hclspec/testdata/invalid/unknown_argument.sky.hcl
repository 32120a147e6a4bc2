pool "dev" {
  nodes  = 1
  colour = "red" # ERROR: Unsupported argument
}
