provider "container" {
  binary = "docker"
  colour = "blue" # ERROR: Unsupported argument
}
