# Images: local paths must exist relative to the configuration directory.

image "full" {
  apt      = ["jq", "curl"]
  pip      = ["requests==2.32.3", "./wheels/mypkg-1.0-py3-none-any.whl", "./src"]
  env      = { GREETING = trimspace(file("greeting.txt")) }
  includes = ["./src", "greeting.txt"]
  setup    = ["echo ${sha256("x")}", "echo ${base64encode("hi")}"]
}

image "empty" {}

pool "dev" {
  image = image.full
  nodes = 2
}

pool "bare" {
  image = image.empty
}
