#!/usr/bin/env bash
# make demo: apply the local example pool, show its state, run its tasks,
# reach a node over SSH, then destroy it, in a scratch directory.
set -euo pipefail
skyward=${1:?usage: demo.sh SKYWARD_BINARY BASE_IMAGE}
image=${2:?usage: demo.sh SKYWARD_BINARY BASE_IMAGE}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/skyward-demo.XXXXXX)
cp "$here/local.sky.hcl" "$work/"
cd "$work"
export SKYWARD_VAR_base_image=$image

cleanup() { "$skyward" destroy -auto-approve >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

set -x
"$skyward" validate
"$skyward" plan
"$skyward" apply -auto-approve
"$skyward" status
"$skyward" run hello check_env node_info shard_sum
"$skyward" run shard_sum -json
"$skyward" ssh dev/1 -- 'echo "$(cat /tmp/ready) on $(hostname)"'
"$skyward" output head
"$skyward" destroy -auto-approve
