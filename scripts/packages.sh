#!/usr/bin/env bash
# packages.sh: installs the Debian packages berth's build, tests and quick start need,
# only when one is missing. Needs root (apt-get).
#   golang-github-containerd-containerd-dev  containerd 1.6's .proto files: the wire-compat test
#                   checks ours against them
#   containerd      the real `ctr` 1.6 client the tests drive berthd with (and containerd
#                   itself, the reference the benchmarks compare with)
#   busybox-static  the static busybox the tests build their images from
#   docker-registry the local registry the tests push to and pull from
#   skopeo          pushes the test images (OCI layouts) to that registry
#   runc crun hyperfine  the runtimes and timer of the benchmarks
#   tmux            drives interactive terminal tests
set -euo pipefail
PACKAGES=(containerd golang-github-containerd-containerd-dev busybox-static docker-registry skopeo runc crun hyperfine tmux ca-certificates)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "packages.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's containerd package enables its own daemon; berth runs beside it, so leave it
# as it is, but make sure the package's service did not claim anything berth uses.
