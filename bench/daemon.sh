#!/usr/bin/env bash
# bench/daemon.sh [RUNS]: berthd vs containerd 1.6, side by side in one run, as root.
#   start -> first answer: from exec of the daemon (fresh, empty root) to the first
#                          `ctr version` that succeeds (ctr polled back to back)
#   idle RSS:              VmRSS after 12 ctr calls (namespaces, images, containers,
#                          version) and a 2 s settle
# Prints the median of RUNS (default 7) for each daemon and the ratio berthd/containerd.
# BERTHD (default target/release/berthd) must be built: cargo build --release --bins.
# Each run uses fresh directories under one bench dir, removed at exit (not between runs).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
berthd=${BERTHD:-target/release/berthd}
[ -x "$berthd" ] || { echo "daemon.sh: $berthd missing: cargo build --release --bins" >&2; exit 1; }
command -v containerd >/dev/null || { echo "daemon.sh: containerd missing: bash scripts/packages.sh" >&2; exit 1; }
dir=$(mktemp -d /tmp/berth-bench-daemon.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    grep -o " $dir[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

now_us() { echo $(( ${EPOCHREALTIME/./} )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

start_berthd() { # run dir -> sets pid
    "$berthd" --root "$1/root" --state "$1/state" --address "$1/sock" --log-level warn 2>"$1/log" &
    pid=$!
}
start_containerd() {
    mkdir -p "$1"
    cat >"$1/config.toml" <<CONF
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$1/sock"
[ttrpc]
  address = "$1/sock.ttrpc"
[debug]
  address = "$1/debug.sock"
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$1/opt"
CONF
    containerd --config "$1/config.toml" 2>"$1/log" &
    pid=$!
}

measure() { # daemon run -> prints "start_ms rss_kib"
    local kind=$1 run=$dir/$1-$2 t0 t1
    mkdir -p "$run"
    t0=$(now_us)
    "start_$kind" "$run"
    pids+=("$pid")
    until ctr -a "$run/sock" --connect-timeout 1s version >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { echo "daemon.sh: $kind died: $(cat "$run/log")" >&2; exit 1; }
    done
    t1=$(now_us)
    for i in 1 2 3; do
        ctr -a "$run/sock" namespaces create "b$i" >/dev/null
        ctr -a "$run/sock" namespaces ls >/dev/null
        ctr -a "$run/sock" -n "b$i" images ls >/dev/null
        ctr -a "$run/sock" -n "b$i" containers ls >/dev/null
    done
    sleep 2
    local rss
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    echo "$(( (t1 - t0) / 1000 )) $rss"
}

: >"$dir/berthd.txt"; : >"$dir/containerd.txt"
for r in $(seq "$runs"); do
    measure berthd "$r" >>"$dir/berthd.txt"
    measure containerd "$r" >>"$dir/containerd.txt"
done
bs=$(cut -d' ' -f1 "$dir/berthd.txt" | median); cs=$(cut -d' ' -f1 "$dir/containerd.txt" | median)
br=$(cut -d' ' -f2 "$dir/berthd.txt" | median); cr=$(cut -d' ' -f2 "$dir/containerd.txt" | median)
echo "berthd $("$berthd" --version 2>/dev/null || echo '?') vs $(containerd --version | cut -d' ' -f3); $runs runs each, interleaved; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %12s %8s\n' metric berthd containerd ratio
printf '%-34s %10s %12s %8s\n' "start -> first answer, median ms" "$bs" "$cs" "$(awk "BEGIN {printf \"%.2f\", $bs/$cs}")"
printf '%-34s %10s %12s %8s\n' "idle RSS, median MiB" "$(awk "BEGIN {printf \"%.1f\", $br/1024}")" "$(awk "BEGIN {printf \"%.1f\", $cr/1024}")" "$(awk "BEGIN {printf \"%.2f\", $br/$cr}")"
