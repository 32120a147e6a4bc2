# Pool attributes in locals, outputs and tasks: unknown before apply, and
# never an error.

pool "dev" {
  nodes = 2
}

pool "other" {
  nodes = 1
}

locals {
  ips      = [for n in pool.dev.nodes : n.private_ip]
  head     = pool.dev.nodes[0]
  all_ids  = concat(pool.dev.nodes[*].id, pool.other.nodes[*].id)
  endpoint = "${local.head.ssh_host}:${local.head.ssh_port}"
}

task "connect" {
  pool     = pool.other
  for_each = local.ips
  run      = "ping -c1 $SKYWARD_EACH_VALUE"
  env      = { HEAD = local.head.private_ip }
}

output "ips" { value = local.ips }
output "endpoint" { value = local.endpoint }
output "count" { value = length(pool.dev.nodes) }
