#!/usr/bin/env bash
# quickstart.sh: berth's main job on a fresh machine, as root.
#   1. installs the Debian packages that are missing (scripts/packages.sh)
#   2. builds berth's binaries (release) and installs them in /usr/local/bin
#   3. starts berthd with its defaults (root /var/lib/berth, state /run/berth,
#      socket /run/berth/berthd.sock), unless one already answers there
#   4. builds a busybox image offline, imports it and runs containers in it, through
#      the real ctr and through berthctl: one in the foreground, one detached whose logs
#      are read back, then removed.
# berthd keeps running afterwards (its log: /var/log/berthd.log); stop it with
# `kill $(cat /run/berth/berthd.pid)`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "quickstart.sh: run as root (berthd manages mounts and cgroups)" >&2; exit 1; }

bash scripts/packages.sh
cargo build --release --bins
install -m 0755 target/release/berthd target/release/berth-shim target/release/berth-runc \
    target/release/berthctl /usr/local/bin/

sock=/run/berth/berthd.sock
if ! ctr -a "$sock" version >/dev/null 2>&1; then
    echo "== starting berthd (log: /var/log/berthd.log)"
    mkdir -p /run/berth
    nohup /usr/local/bin/berthd >>/var/log/berthd.log 2>&1 &
    echo $! >/run/berth/berthd.pid
    for _ in $(seq 200); do ctr -a "$sock" version >/dev/null 2>&1 && break; sleep 0.05; done
fi
echo "== ctr version (the real containerd 1.6 client, talking to berthd)"
ctr -a "$sock" version

image=localhost/busybox:latest
archive=$(mktemp --suffix=.tar)
trap 'rm -f "$archive"' EXIT
bash scripts/busybox-image.sh "$archive" "$image" >/dev/null
echo "== ctr images import"
ctr -a "$sock" images import "$archive"
echo "== ctr run --rm $image hello"
ctr -a "$sock" run --rm "$image" "hello-$$" sh -c 'echo "hello from a berth container: $(uname -n)"'

export BERTH_ADDRESS=$sock
echo "== berthctl run -d, logs, rm"
berthctl run -d --name "demo-$$" "$image" sh -c 'for i in 1 2 3; do echo "line $i"; done; sleep 1000'
for _ in $(seq 100); do berthctl logs "demo-$$" | grep -q 'line 3' && break; sleep 0.05; done
berthctl logs "demo-$$"
berthctl ps
berthctl rm -f "demo-$$"
echo "== done: berthd is running on $sock"
