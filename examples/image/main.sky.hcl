# Testing your image: everything an image can put on a node (apt, an
# offline pip wheel from wheels/, env, the files of app/), checked by a
# task on every node. In this directory:
#
#   skyward apply
#   skyward run image_check
#   skyward destroy
#
# The base image comes from base_image.auto.skyvars.

variable "base_image" {
  type        = string
  default     = "ubuntu:24.04"
  description = "Base image of every node; the pip step needs python3 and its venv module."
}

provider "container" {
  image = var.base_image
}

image "tools" {
  apt      = ["bc"]                                  # a system tool, run from a task
  pip      = ["./wheels/mylib-0.1-py3-none-any.whl"] # installed offline into the task venv
  env      = { MY_VAR = "it works" }
  includes = ["./app"] # copied into the work directory, where tasks run
}

pool "dev" {
  nodes = 2
  image = image.tools
}

# Every node checks apt, pip, env and includes; each result is a JSON
# object, and the task fails if any check fails.
task "image_check" {
  pool = pool.dev
  mode = "broadcast"
  run  = <<-EOT
    set -e
    sum=$(echo 2+3 | bc)
    lib=$(python -c 'import mylib; print(mylib.hello())')
    greet=$(cd app && python -c 'import greet; print(greet.greeting())')
    printf '{"bc": %s, "mylib": "%s", "my_var": "%s", "greet": "%s"}\n' \
      "$sum" "$lib" "$MY_VAR" "$greet" > "$SKYWARD_RESULT_FILE"
  EOT
}
