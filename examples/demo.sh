#!/usr/bin/env bash
# make demo: apply the local example pool, show its state, run its tasks,
# reach a node over SSH, then destroy it, from a copy of examples/local in
# a scratch directory (so that its .skyward/ lands there, not in the tree).
set -euo pipefail
skyward=${1:?usage: demo.sh SKYWARD_BINARY BASE_IMAGE}
image=${2:?usage: demo.sh SKYWARD_BINARY BASE_IMAGE}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/skyward-demo.XXXXXX)
cp -R "$here/local/." "$work/"
cd "$work"
# The example reads its base image from base_image.auto.skyvars; give it
# the one this demo was handed.
printf 'base_image = "%s"\n' "$image" >base_image.auto.skyvars

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
