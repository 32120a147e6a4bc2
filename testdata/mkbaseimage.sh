#!/usr/bin/env bash
# Builds the Debian bookworm base image that tests, examples and `make demo`
# give to the container provider (no registry can be reached here, so nothing
# is pulled). The image is built once and cached by tag: when the tag exists
# this script does nothing.
#
# Usage: testdata/mkbaseimage.sh [TAG]
#        testdata/mkbaseimage.sh --tag      (print the default tag, build nothing)
#        testdata/mkbaseimage.sh --podman [TAG]
#                                           (also load it into this user's Podman,
#                                           under the same tag, cached by tag)
# Env:   SKYWARD_APT_MIRROR overrides the Debian mirror (default: the one apt
#        on this machine is configured with).
set -euo pipefail
print_tag=false
to_podman=false
case "${1:-}" in
--tag) print_tag=true; shift ;;
--podman) to_podman=true; shift ;;
esac

packages=(openssh-server sudo python3 python3-venv python3-pip ca-certificates curl jq procps iproute2)
# The tag carries a hash of the package list so that changing it builds anew.
hash=$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-8)
tag=${1:-skyward-test-base:bookworm-$hash}
docker=${DOCKER:-docker}
if $print_tag; then
  echo "$tag"
  exit 0
fi

# Podman gets the Docker image as it is (docker save | podman load), so
# both runtimes start nodes from the same bytes under the same tag.
load_podman() {
  if podman image exists "$tag" 2>/dev/null; then
    return 0
  fi
  echo "mkbaseimage: loading $tag into podman" >&2
  local out
  if ! out=$($docker save "$tag" | podman load 2>&1); then
    echo "mkbaseimage: podman load failed:" >&2
    echo "$out" >&2
    exit 1
  fi
}

if $docker image inspect "$tag" >/dev/null 2>&1; then
  if $to_podman; then load_podman; fi
  echo "$tag"
  exit 0
fi

mirror=${SKYWARD_APT_MIRROR:-}
if [ -z "$mirror" ]; then
  # deb822 sources first, then the one-line format.
  mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -m1 '/debian/\?$' || true)
fi
if [ -z "$mirror" ]; then
  mirror=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -m1 '/debian/\?$' || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

# The logs of apt-get, debootstrap and docker import are kept in a file and
# shown only when a step fails: a first `make demo` or `make test` prints
# one line here, not thousands.
log=$(mktemp /tmp/skyward-mkbaseimage.XXXXXX)
root=
trap 'rm -rf "$log" ${root:+"$root"}' EXIT
fail() {
  echo "mkbaseimage: $1 failed; its output:" >&2
  cat "$log" >&2
  exit 1
}

if ! command -v debootstrap >/dev/null; then
  echo "mkbaseimage: installing debootstrap" >&2
  apt-get update -qq >>"$log" 2>&1 || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >>"$log" 2>&1 || fail "apt-get install debootstrap"
fi

root=$(mktemp -d /tmp/skyward-rootfs.XXXXXX)
echo "mkbaseimage: building $tag: debootstrap bookworm from $mirror (a few minutes, once; cached by tag)" >&2
include=$(IFS=,; echo "${packages[*]}")
debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" >>"$log" 2>&1 || fail debootstrap

# Keep the image small and free of host identity: no cached debs, no apt
# lists (a bootstrap runs apt-get update anyway), no ssh host keys (skyward
# brings its own), no machine id.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/etc/ssh/ssh_host_* "$root"/tmp/*
: >"$root"/etc/machine-id
echo "deb $mirror bookworm main" >"$root"/etc/apt/sources.list

tar -C "$root" -c . | $docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$tag" >>"$log" 2>&1 || fail "docker import"
if $to_podman; then load_podman; fi
echo "$tag"
