# A parameter grid: one execution per learning rate, spread over the
# nodes' task slots; collect the results with -json and jq. In this
# directory:
#
#   skyward apply
#   skyward run grid -json | jq -r '.executions[] | "\(.key)\t\(.result.loss)"'
#   skyward destroy
#
# The base image comes from base_image.auto.skyvars.

variable "base_image" {
  type    = string
  default = "ubuntu:24.04"
}

provider "container" {
  image = var.base_image
}

pool "grid" {
  nodes       = 2
  concurrency = 2 # two executions at once on each node
}

task "grid" {
  pool     = pool.grid
  for_each = { large = 0.1, medium = 0.01, small = 0.001 }
  run      = <<-EOT
    awk -v lr="$SKYWARD_EACH_VALUE" -v key="$SKYWARD_EACH_KEY" 'BEGIN {
      printf "{\"name\": \"%s\", \"lr\": %s, \"loss\": %.6f}\n", key, lr, (lr - 0.01) ^ 2
    }' > "$SKYWARD_RESULT_FILE"
  EOT
}
