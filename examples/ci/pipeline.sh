#!/usr/bin/env bash
# The steps of .github/workflows/skyward.yml as one script, so that they run
# the same on GitHub Actions, on a laptop, and in this repository's CI
# (testdata/script/ci_pipeline.txtar, against moto's S3).
#
#   pipeline.sh plan    DIR   on a pull request: plan, write the PR comment
#   pipeline.sh apply   DIR   on merge: plan again, apply when it has
#                             changes, then skyward test
#   pipeline.sh destroy DIR   remove the pools (containers die with the runner)
#
# The state lives in S3: the backend block is written to DIR/backend.sky.hcl
# from SKYWARD_BACKEND_BUCKET, SKYWARD_BACKEND_KEY (default
# skyward/state.json), SKYWARD_BACKEND_REGION and SKYWARD_BACKEND_ENDPOINT
# (an S3-compatible endpoint, optional), unless DIR already has a skyward
# block. SKYWARD_STATE_KEY encrypts the SSH keys and tokens kept beside the
# state; AWS credentials come from the SDK's usual chain.
#
# Files written in DIR: skyward.plan (the saved plan), skyward-plan.txt (its
# text), skyward-plan.md (the pull request comment), skyward-junit.xml (the
# test report). On GitHub Actions, "changes=true|false" goes to
# $GITHUB_OUTPUT.
set -euo pipefail

stage=${1:?usage: pipeline.sh plan|apply|destroy DIR}
dir=${2:-.}
skyward=${SKYWARD:-skyward}
export NO_COLOR=1

cd "$dir"

if ! grep -qs '^skyward *{' ./*.sky.hcl; then
  : "${SKYWARD_BACKEND_BUCKET:?set SKYWARD_BACKEND_BUCKET to the bucket that keeps the state}"
  {
    echo 'skyward {'
    echo '  backend "s3" {'
    echo "    bucket = \"$SKYWARD_BACKEND_BUCKET\""
    echo "    key    = \"${SKYWARD_BACKEND_KEY:-skyward/state.json}\""
    [ -n "${SKYWARD_BACKEND_REGION:-}" ] && echo "    region = \"$SKYWARD_BACKEND_REGION\""
    [ -n "${SKYWARD_BACKEND_ENDPOINT:-}" ] && echo "    endpoint = \"$SKYWARD_BACKEND_ENDPOINT\""
    echo '  }'
    echo '}'
  } >backend.sky.hcl
  "$skyward" fmt backend.sky.hcl >/dev/null
fi

"$skyward" init

# plan: 0 no changes, 2 changes, 1 error (the job fails).
plan() {
  set +e
  "$skyward" plan -detailed-exitcode -lock-timeout=5m -out=skyward.plan >skyward-plan.txt
  code=$?
  set -e
  cat skyward-plan.txt
  case $code in
  0) changes=false ;;
  2) changes=true ;;
  *) echo "pipeline: skyward plan failed (exit $code)" >&2; exit 1 ;;
  esac
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "changes=$changes" >>"$GITHUB_OUTPUT"
  fi
}

case $stage in
plan)
  plan
  {
    echo "### skyward plan"
    echo
    if [ "$changes" = true ]; then
      grep -E '^Plan: ' skyward-plan.txt || true
    else
      echo "No changes. The pools match the configuration."
    fi
    echo
    echo '<details><summary>Plan output</summary>'
    echo
    echo '```'
    cat skyward-plan.txt
    echo '```'
    echo
    echo '</details>'
  } >skyward-plan.md
  ;;
apply)
  plan
  if [ "$changes" = true ]; then
    "$skyward" apply skyward.plan
  else
    echo "pipeline: nothing to apply"
  fi
  "$skyward" test -junit-xml=skyward-junit.xml
  ;;
destroy)
  "$skyward" destroy -auto-approve -lock-timeout=5m
  ;;
*)
  echo "pipeline: unknown stage $stage (want plan, apply or destroy)" >&2
  exit 2
  ;;
esac
