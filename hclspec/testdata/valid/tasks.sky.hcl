# Every task argument.

pool "dev" {
  nodes = 3
}

task "single_head" {
  pool      = pool.dev
  target    = "head"
  command   = ["python3", "-c", "print(1)"]
  timeout   = "30m"
  retries   = 2
  fail_fast = false
  env = {
    A = "1"
    B = "two"
  }
}

task "single_index" {
  pool   = pool.dev
  mode   = "single"
  target = 2
  run    = "hostname"
}

task "single_index_string" {
  pool   = pool.dev
  target = "1"
  run    = "hostname"
}

task "by_map" {
  pool     = pool.dev
  for_each = { zeta = 26, alpha = 1, mu = 12 }
  run      = "echo $SKYWARD_EACH_KEY=$SKYWARD_EACH_VALUE"
}

task "by_set" {
  pool     = pool.dev
  for_each = toset(["b", "a", "c"])
  run      = "echo $SKYWARD_EACH_VALUE"
}

task "by_count" {
  pool  = pool.dev
  count = 4
  run   = "echo $SKYWARD_EACH_KEY"
}

task "sharded" {
  pool  = pool.dev
  mode  = "broadcast"
  shard = [for i in range(7) : { n = i }]
  run   = "cat $SKYWARD_SHARD_FILE"
}

task "uses_pool_address" {
  pool = pool.dev
  run  = "ping -c1 ${pool.dev.nodes[0].private_ip}"
}
