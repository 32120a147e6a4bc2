pool "dev" {}

task "sum" {
  pool  = pool.dev
  shard = range(10) # ERROR: Invalid use of shard
  run   = "cat $SKYWARD_SHARD_FILE"
}
