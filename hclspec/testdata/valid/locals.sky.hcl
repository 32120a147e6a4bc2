# Locals that depend on each other across blocks, declared out of order.

variable "team" {
  type    = string
  default = "ml"
}

locals {
  labels     = merge(local.base_labels, { team = var.team })
  names      = [for i in range(local.node_count) : format("%s-%02d", var.team, i)]
  node_count = local.per_zone * length(local.zones)
}

locals {
  base_labels = { owner = "skyward" }
  zones       = ["a", "b"]
  per_zone    = 2
  doc         = jsonencode({ names = local.names, labels = local.labels })
  upper_names = { for n in local.names : n => upper(n) if n != "" }
  shard_items = [for i in range(10) : { id = i, even = i % 2 == 0 }]
}

pool "workers" {
  nodes = local.node_count
}

task "report" {
  pool = pool.workers
  run  = "echo '${local.doc}'"
  env  = local.labels
}

output "doc" { value = local.doc }
