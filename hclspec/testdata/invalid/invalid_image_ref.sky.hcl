image "py" {}

pool "dev" {
  image = "py" # ERROR: Invalid image reference
}

task "t" {
  pool = pool.dev.nodes # ERROR: Invalid pool reference
  run  = "true"
}
