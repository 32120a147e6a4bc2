pool "dev" {}

output "ip" {
  value = pool.prod.nodes[0].private_ip # ERROR: Reference to undeclared pool
}
