#!/usr/bin/env bash
# bench/pull.sh: pull + unpack of the same images from the same local registry through
# berthd (Transfer.Pull via `berthctl pull`: layers applied while they download) and
# through containerd 1.6 (`ctr images pull`: fetch, then unpack), interleaved in one run;
# plus the host's `tar -xzf` of the big layer. Prints medians and ratios.
#
# Images (built by ../shared/tools/make-images.sh, pushed to a private docker-registry):
#   busybox     1 layer (static busybox)
#   multilayer  4 layers, ~10 MB (whiteout + opaque dir in the last)
#   big         1 layer, ~50 MB: the make-images debian layer if built (WITH_DEBIAN=1),
#               else BIG_LAYER (a .tar.gz rootfs layer; default /work/tmp-layer/layer.tar.gz)
#
# Every measured pull starts a fresh daemon on a fresh root (nothing cached, nothing
# deleted in between: the disk is slow right after mass deletes); old roots are removed
# only at the end.
#
# Usage (as root):  bench/pull.sh [RUNS]        (default 5)
# Environment:      BERTHD, BERTHCTL (default target/release/*), CONTAINERD, CTR,
#                   WORK (default /tmp/berth-bench-pull), REGISTRY_PORT (default: a free port),
#                   MAKE_IMAGES (default /work/shared/tools/make-images.sh), BIG_LAYER,
#                   IMAGES (default "busybox multilayer big")
set -euo pipefail
export LC_ALL=C

RUNS=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
BERTHD=${BERTHD:-$here/target/release/berthd}
BERTHCTL=${BERTHCTL:-$here/target/release/berthctl}
CONTAINERD=${CONTAINERD:-$(command -v containerd || true)}
CTR=${CTR:-$(command -v ctr || true)}
WORK=${WORK:-/tmp/berth-bench-pull}
REGISTRY_PORT=${REGISTRY_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
MAKE_IMAGES=${MAKE_IMAGES:-/work/shared/tools/make-images.sh}
BIG_LAYER=${BIG_LAYER:-/work/tmp-layer/layer.tar.gz}
IMAGES=${IMAGES:-busybox multilayer big}
NS=bench

for b in "$BERTHD" "$BERTHCTL" "$CONTAINERD" "$CTR" "$MAKE_IMAGES"; do
  [[ -x $b ]] || { echo "missing executable: ${b:-?} (cargo build --release -p berth-supervisord -p berth-client)" >&2; exit 2; }
done
for t in docker-registry skopeo jq python3; do
  command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }

export ANCHORS_DIR=$WORK/anchors
export REGISTRY_ADDR=127.0.0.1:$REGISTRY_PORT
REG=$REGISTRY_ADDR
RUNDIR=$WORK/runs/$(date -u +%Y%m%dT%H%M%S)
SAMPLES=$RUNDIR/samples
mkdir -p "$SAMPLES"
log() { printf '[pull.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

DAEMON_PID=
stop_daemon() {
  [[ -n $DAEMON_PID ]] || return 0
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$DAEMON_PID" 2>/dev/null && kill -KILL "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=
}
cleanup() {
  stop_daemon
  "$MAKE_IMAGES" registry-stop >/dev/null 2>&1 || true
  # The only mass delete, after all measurements.
  rm -rf "$RUNDIR/roots"
}
trap cleanup EXIT

# ------------------------------------------------------------------ images ----
WITH_DEBIAN=0 "$MAKE_IMAGES" build >/dev/null
big_layout=$ANCHORS_DIR/oci/debian
big_layer_gz=$ANCHORS_DIR/work/debian/layer0.tar.gz
if [[ ! -f $big_layout/index.json ]]; then
  [[ -f $BIG_LAYER ]] || { echo "no big layer: set BIG_LAYER to a .tar.gz layer or WITH_DEBIAN=1 for make-images.sh" >&2; exit 2; }
  log "building the big image from $BIG_LAYER"
  python3 - "$big_layout" "$BIG_LAYER" <<'PY'
import gzip, hashlib, json, os, shutil, sys
dest, layer = sys.argv[1:3]
blobs = os.path.join(dest, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return "sha256:" + d, len(data)
h, u = hashlib.sha256(), hashlib.sha256()
with open(layer, "rb") as f:
    for c in iter(lambda: f.read(1 << 20), b""): h.update(c)
with gzip.open(layer, "rb") as f:
    for c in iter(lambda: f.read(1 << 20), b""): u.update(c)
ld = "sha256:" + h.hexdigest()
shutil.copyfile(layer, os.path.join(blobs, h.hexdigest()))
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["bash"]},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + u.hexdigest()]}},
                 sort_keys=True, separators=(",", ":")).encode()
cd, cs = put(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld,
                              "size": os.path.getsize(layer)}]},
                 sort_keys=True, separators=(",", ":")).encode()
md, ms = put(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "platform": {"architecture": "amd64", "os": "linux"},
           "annotations": {"org.opencontainers.image.ref.name": "latest"}}]},
          open(os.path.join(dest, "index.json"), "w"))
open(os.path.join(dest, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
  big_layer_gz=$BIG_LAYER
fi
[[ -f $big_layer_gz ]] || big_layer_gz=$(ls -S "$big_layout"/blobs/sha256/* | head -1)
# A registry left by an earlier run may listen elsewhere: start ours afresh.
"$MAKE_IMAGES" registry-stop >/dev/null 2>&1 || true
"$MAKE_IMAGES" push >/dev/null
ref_of() { case $1 in big) echo "$REG/debian:latest" ;; *) echo "$REG/$1:latest" ;; esac; }

# ----------------------------------------------------------------- daemons ----
wait_ready() {  # wait_ready CMD...: until CMD succeeds (daemon answering) or it died
  local i
  for ((i = 0; i < 2000; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { echo "daemon died" >&2; return 1; }
    sleep 0.01
  done
  echo "daemon not ready" >&2; return 1
}

start_containerd() {  # start_containerd DIR
  local d=$1
  mkdir -p "$d"
  cat > "$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/c.sock"
[ttrpc]
  address = "$d/c.sock.ttrpc"
[debug]
  address = "$d/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
  "$CONTAINERD" --config "$d/config.toml" > "$d/log" 2>&1 < /dev/null &
  DAEMON_PID=$!
  wait_ready "$CTR" -a "$d/c.sock" version
}

start_berthd() {  # start_berthd DIR
  local d=$1
  mkdir -p "$d"
  "$BERTHD" --root "$d/root" --state "$d/state" --address "$d/b.sock" --log-level warn > "$d/log" 2>&1 < /dev/null &
  DAEMON_PID=$!
  wait_ready "$BERTHCTL" --address "$d/b.sock" version
}

# timed VAR CMD...: wall milliseconds of CMD in VAR (exits on failure)
timed() {
  local var=$1; shift
  local t0=$EPOCHREALTIME
  "$@" > "$RUNDIR/last.out" 2>&1 || { cat "$RUNDIR/last.out" >&2; echo "failed: $*" >&2; exit 1; }
  local t1=$EPOCHREALTIME
  printf -v "$var" '%s' "$(python3 -c "print(f'{($t1-$t0)*1000:.1f}')")"
}

roots=$RUNDIR/roots
for ((i = 1; i <= RUNS; i++)); do
  for img in $IMAGES; do
    ref=$(ref_of "$img")
    # Alternate the order so neither daemon always goes first.
    order="containerd berthd"; (( i % 2 == 0 )) && order="berthd containerd"
    for who in $order; do
      d=$roots/$img-$i-$who
      if [[ $who == containerd ]]; then
        start_containerd "$d"
        timed ms "$CTR" -a "$d/c.sock" -n "$NS" images pull --plain-http "$ref"
      else
        start_berthd "$d"
        timed ms "$BERTHCTL" --address "$d/b.sock" -n "$NS" pull -q "$ref"
      fi
      stop_daemon
      echo "$ms" >> "$SAMPLES/$img-$who.txt"
      log "run $i $img $who: $ms ms"
    done
    if [[ $img == big ]]; then
      t=$roots/tar-$i; mkdir -p "$t"
      timed ms tar -xzf "$big_layer_gz" -C "$t"
      echo "$ms" >> "$SAMPLES/big-tar.txt"
      log "run $i big tar -xzf: $ms ms"
    fi
  done
done

python3 - "$SAMPLES" $IMAGES <<'PY'
import statistics, sys, os
d, images = sys.argv[1], sys.argv[2:]
def med(name):
    p = os.path.join(d, name + ".txt")
    v = [float(x) for x in open(p) if x.strip()]
    return statistics.median(v), len(v)
print(f"{'image':12} {'berthd ms':>10} {'containerd ms':>14} {'berth/ctrd':>11}  note")
for img in images:
    (b, n), (c, _) = med(img + "-berthd"), med(img + "-containerd")
    note = ""
    if img == "big" and os.path.exists(os.path.join(d, "big-tar.txt")):
        t, _ = med("big-tar")
        note = f"tar -xzf {t:.0f} ms, berth/tar {b / t:.2f}"
    print(f"{img:12} {b:10.0f} {c:14.0f} {b / c:11.2f}  {note} (n={n})")
PY
echo "samples: $SAMPLES" >&2
