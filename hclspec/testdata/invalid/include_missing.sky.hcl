image "py" {
  includes = ["./include_missing.sky.hcl", "./missing"] # ERROR: Include path not found
}
