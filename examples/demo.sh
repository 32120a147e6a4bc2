#!/usr/bin/env bash
# make demo: apply the local example pool, reach every node over SSH,
# show its state, then destroy it, in a scratch directory.
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
for i in 0 1 2; do
  "$skyward" ssh "dev/$i" -- 'echo "$(cat /tmp/ready) on $(hostname)"'
done
"$skyward" output head
"$skyward" destroy -auto-approve
