#!/usr/bin/env bash
# bench/run.sh: berthd (+ berth-shim) against a private containerd 1.6 (+ runc / crun), in
# ONE run, with the same ctr and the same busybox image served by a local registry.
#
#   e2e     `ctr run --rm IMG id true`, berthd vs containerd+runc, runs interleaved
#   mem     20 sleeping tasks per daemon: mean VmRSS and threads per shim
#   thru    50 sequential `ctr run -d` starts: total time and rate (halves ordered ABBA)
#   restart 100 live tasks: kill -9 the daemon, restart it, time until Tasks.List shows
#           all 100 RUNNING. Main figure: supervisord/examples/ready_probe spawns the
#           daemon itself (exact t0), dials its socket as soon as it accepts and calls
#           Tasks.List back to back (same gRPC call for both daemons). Second line, for
#           transparency: the old probe, `ctr tasks ls` polled back to back from the
#           shell (a Go process start per poll is inside that figure); the cost of one
#           `ctr tasks ls` and of one Tasks.List against the warm daemon follow.
#   client  `berthctl run --rm IMG true` beside `ctr run --rm` against containerd with
#           runc and with crun
#
# Usage (as root):  bench/run.sh
#                   (restart needs the probe: cargo build --release -p berth-supervisord
#                    --example ready_probe)
# Environment:      SECTIONS (comma list of e2e,mem,thru,restart,client; default all),
#                   RUNS (30, timed runs per e2e/client variant), WARM (2), N_MEM (20),
#                   N_THRU (50), N_LIVE (100), N_RESTART (5), BIN_DIR (target/release),
#                   RESULTS (where samples and the table are kept; default
#                   /tmp/berth-bench-results-<UTC>), CTR, CONTAINERD, RUNC, CRUN,
#                   PROBE ($BIN_DIR/examples/ready_probe)
#
# Layout of the bench dir (removed at exit; results are kept elsewhere):
#
#   /tmp/berth-bench-run.XXXXXX/
#     image/rootfs, image/oci      busybox rootfs and its OCI layout (skopeo source)
#     registry/                    docker-registry config, storage and log
#     berth/{root,state}           berthd --root / --state; berthd.sock, berthd.log
#     cd-host/                     containerd, host cgroup view (runc): config, root,
#                                  state, opt, containerd.sock, containerd.log
#     cd-v1/                       containerd in a mount namespace without cgroup2 (crun)
#
# crun 1.8 refuses this hybrid cgroup host while /sys/fs/cgroup/unified carries a
# controller, so the crun daemon runs under `unshare -m` with that mount lazily removed
# (no per-call cost); berthd and the runc daemon see the host as it is.
#
# noise.txt (printed above the table) holds the load average and how long creating a
# file takes on this disk, at start and end: this disk is slow to create files for
# minutes after a mass delete (such as the clean-up of a run just before). That adds
# about the same time to each start of either daemon, so it lowers berthd's ratios:
# leave a few minutes between runs.
#
# The daemons' logs are copied to $RESULTS/logs at exit (BERTHD_SPAN_TIMES=1 in the
# environment makes berthd log every RPC's duration there).
#
# Nothing is mass-deleted between runs (fresh ids everywhere); everything started here
# (tasks, shims, containers, mounts, cgroups, registry, daemons) is stopped at exit.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-30}
WARM=${WARM:-2}
N_MEM=${N_MEM:-20}
N_THRU=${N_THRU:-50}
N_LIVE=${N_LIVE:-100}
N_RESTART=${N_RESTART:-5}
SECTIONS=${SECTIONS:-e2e,mem,thru,restart,client}
BIN_DIR=${BIN_DIR:-$here/target/release}
CTR=${CTR:-/usr/bin/ctr}
CONTAINERD=${CONTAINERD:-/usr/bin/containerd}
RUNC=${RUNC:-/usr/sbin/runc}
CRUN=${CRUN:-/usr/bin/crun}
REGISTRY_BIN=${REGISTRY_BIN:-/usr/bin/docker-registry}
RESULTS=${RESULTS:-/tmp/berth-bench-results-$(date -u +%Y%m%dT%H%M%SZ)}
PROBE=${PROBE:-$BIN_DIR/examples/ready_probe}

want() { [[ ,$SECTIONS, == *,"$1",* ]]; } # SECTION: is it to be run?
for s in ${SECTIONS//,/ }; do
  case $s in e2e | mem | thru | restart | client) ;; *) echo "unknown section: $s" >&2; exit 2 ;; esac
done

[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
for b in "$BIN_DIR/berthd" "$BIN_DIR/berth-shim" "$CTR" "$CONTAINERD" "$RUNC" "$CRUN" \
  "$REGISTRY_BIN" /usr/bin/skopeo /bin/busybox; do
  [[ -x $b ]] || { echo "missing executable: $b (berth: cargo build --release --bins)" >&2; exit 2; }
done
if want restart && [[ ! -x $PROBE ]]; then
  echo "missing executable: $PROBE (cargo build --release -p berth-supervisord --example ready_probe)" >&2
  exit 2
fi

W=$(mktemp -d /tmp/berth-bench-run.XXXXXX)
mkdir -p "$RESULTS/samples"
NS=bench-$$-${EPOCHREALTIME/./}
BDIR=$W/berth
BSOCK=$BDIR/berthd.sock
B_PID=
REG_PID=
declare -A CD_PID=()
declare -A CD_MODE=()
FAILURES=()

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { log "FAILED: $*"; FAILURES+=("$*"); }

# ms_between T0 T1 ($EPOCHREALTIME values) -> REPLY in ms with 3 decimals
ms_between() {
  local a=${1/./} b=${2/./} d
  d=$((10#$b - 10#$a))
  printf -v REPLY '%d.%03d' $((d / 1000)) $((d % 1000))
}

bctr() { "$CTR" --address "$BSOCK" --namespace "$NS" "$@"; }
cctr() { local which=$1; shift; "$CTR" --address "$W/$which/containerd.sock" --namespace "$NS" "$@"; }

alive() { # PID: running and not a zombie
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  [[ ${s%% *} != Z ]]
}

# ---------------------------------------------------------------- cleanup ----
remove_all_tasks() { # SOCKET: remove every task and container of $NS on that daemon
  local -a c=("$CTR" --address "$1" --namespace "$NS") ids
  mapfile -t ids < <("${c[@]}" tasks ls -q 2>/dev/null)
  if ((${#ids[@]})); then
    printf '%s\n' "${ids[@]}" | xargs -r -n 10 -P 2 "${c[@]}" tasks kill -s SIGKILL > /dev/null 2>&1
    printf '%s\n' "${ids[@]}" | xargs -r -n 10 -P 2 "${c[@]}" tasks rm -f > /dev/null 2>&1
  fi
  mapfile -t ids < <("${c[@]}" containers ls -q 2>/dev/null)
  if ((${#ids[@]})); then
    printf '%s\n' "${ids[@]}" | xargs -r -n 20 -P 2 "${c[@]}" containers rm > /dev/null 2>&1
  fi
  return 0
}

stop_pid() { # PID: SIGTERM, then SIGKILL after 10 s
  local p=$1 i
  [[ -n $p ]] && alive "$p" || return 0
  kill -TERM "$p" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do alive "$p" || break; sleep 0.05; done
  alive "$p" && kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null || true
}

our_pids() { # processes whose command line mentions the bench dir (shims, daemons)
  local f a
  for f in /proc/[0-9]*/cmdline; do
    a=$({ tr '\0' ' ' < "$f"; } 2>/dev/null) || continue
    [[ $a == *"$W"* ]] || continue
    f=${f#/proc/}
    f=${f%/cmdline}
    [[ $f != "$$" ]] && echo "$f"
  done
}

ns_pids() { # processes in a cgroup of our namespace (container processes)
  grep -l -- "/$NS/" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3 || true
}

cleanup() {
  local rc=$? p m d
  trap - EXIT INT TERM
  set +e
  log "cleanup: tasks, containers, daemons, shims, mounts, cgroups, registry"
  if [[ -n $B_PID ]] && alive "$B_PID"; then remove_all_tasks "$BSOCK"; fi
  for d in "${!CD_PID[@]}"; do
    alive "${CD_PID[$d]}" && remove_all_tasks "$W/$d/containerd.sock"
  done
  stop_pid "$B_PID"
  for d in "${!CD_PID[@]}"; do stop_pid "${CD_PID[$d]}"; done
  stop_pid "$REG_PID"
  for p in $(our_pids) $(ns_pids); do
    log "cleanup: killing leftover process $p ($({ tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null | cut -c1-80))"
    kill -KILL "$p" 2>/dev/null || true
  done
  sleep 0.2 # let the kernel reap what was just killed before unmounting
  for m in $(awk -v d="$W" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" || log "cleanup: cannot unmount $m"
  done
  for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/unified/"$NS"; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || log "cleanup: cannot remove cgroup $d"
  done
  rm -rf "/run/containerd/runc/$NS" "/run/containerd/fifo/$NS" 2>/dev/null || true
  mkdir -p "$RESULTS/logs"
  cp "$BDIR/berthd.log" "$RESULTS/logs/" 2>/dev/null || true
  for d in "${!CD_PID[@]}"; do cp "$W/$d/containerd.log" "$RESULTS/logs/$d.log" 2>/dev/null || true; done
  rm -rf "$W"
  log "cleanup done; samples and table in $RESULTS"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ image/registry ----
build_image() {
  local r=$W/image/rootfs a
  mkdir -p "$r"/{bin,dev,etc,proc,sys,tmp,root,run}
  chmod 1777 "$r/tmp"
  install -m 0755 /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -sf busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
  (cd "$r" && tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@1700000000 \
    --format=posix --pax-option=delete=atime,delete=ctime -cf "$W/image/layer.tar" -- *)
  gzip -n -6 -c "$W/image/layer.tar" > "$W/image/layer.tar.gz"
  python3 - "$W/image" <<'PY'
import hashlib, json, os, shutil, sys
w = sys.argv[1]
oci = os.path.join(w, "oci"); blobs = os.path.join(oci, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
layer = open(os.path.join(w, "layer.tar.gz"), "rb").read()
diff_id = "sha256:" + hashlib.sha256(open(os.path.join(w, "layer.tar"), "rb").read()).hexdigest()
ld = dict(put(layer), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
cfg = {"architecture": "amd64", "os": "linux",
       "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                  "Cmd": ["sh"], "WorkingDir": "/"},
       "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
cd = dict(put(json.dumps(cfg, sort_keys=True).encode()), mediaType="application/vnd.oci.image.config.v1+json")
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cd, "layers": [ld]}
md = dict(put(json.dumps(man, sort_keys=True).encode()), mediaType="application/vnd.oci.image.manifest.v1+json")
md["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
json.dump({"schemaVersion": 2, "manifests": [md]}, open(os.path.join(oci, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(oci, "oci-layout"), "w"))
PY
  echo '{"default": [{"type": "insecureAcceptAnything"}]}' > "$W/image/policy.json"
}

start_registry() {
  local port i
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  REG_ADDR=127.0.0.1:$port
  mkdir -p "$W/registry/storage"
  cat > "$W/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry/storage
http:
  addr: $REG_ADDR
EOF
  "$REGISTRY_BIN" serve "$W/registry/config.yml" > "$W/registry/registry.log" 2>&1 < /dev/null &
  REG_PID=$!
  for ((i = 0; i < 200; i++)); do
    curl -fsS -m 1 "http://$REG_ADDR/v2/" > /dev/null 2>&1 && return 0
    alive "$REG_PID" || break
    sleep 0.05
  done
  cat "$W/registry/registry.log" >&2
  log "registry did not come up"; exit 1
}

# ---------------------------------------------------------------- daemons ----
start_berthd() { # waits until `ctr version` answers; sets B_PID, REPLY = ms to ready
  local t0=$EPOCHREALTIME i
  mkdir -p "$BDIR"
  "$BIN_DIR/berthd" --root "$BDIR/root" --state "$BDIR/state" --address "$BSOCK" \
    --log-level info >> "$BDIR/berthd.log" 2>&1 < /dev/null &
  B_PID=$!
  for ((i = 0; i < 3000; i++)); do
    bctr version > /dev/null 2>&1 && { ms_between "$t0" "$EPOCHREALTIME"; return 0; }
    alive "$B_PID" || break
    sleep 0.01
  done
  tail -20 "$BDIR/berthd.log" >&2
  log "berthd did not become ready"; exit 1
}

start_containerd() { # WHICH (cd-host | cd-v1)
  local which=$1 dir=$W/$1 i
  mkdir -p "$dir"
  cat > "$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = "$dir/debug.sock"
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
  if [[ $which == cd-v1 ]]; then
    unshare -m --propagation private /bin/sh -c \
      'umount -l /sys/fs/cgroup/unified && exec "$0" --config "$1"' "$CONTAINERD" "$dir/config.toml" \
      >> "$dir/containerd.log" 2>&1 < /dev/null &
  else
    "$CONTAINERD" --config "$dir/config.toml" >> "$dir/containerd.log" 2>&1 < /dev/null &
  fi
  CD_PID[$which]=$!
  for ((i = 0; i < 3000; i++)); do
    cctr "$which" version > /dev/null 2>&1 && return 0
    alive "${CD_PID[$which]}" || break
    sleep 0.01
  done
  tail -20 "$dir/containerd.log" >&2
  log "containerd ($which) did not become ready"; exit 1
}

# -------------------------------------------------------------- measuring ----
stats() { # FILE -> "n median min max mean"
  python3 - "$1" <<'PY'
import statistics, sys
v = [float(x) for x in open(sys.argv[1]) if x.strip()]
if not v: print("0 NA NA NA NA")
else: print(len(v), f"{statistics.median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}", f"{statistics.mean(v):.2f}")
PY
}
median() { local s; s=$(stats "$1"); s=${s#* }; echo "${s%% *}"; }

# timed_run FILE LABEL CMD...: one timed run appended to FILE (ms); 1 on failure
timed_run() {
  local file=$1 label=$2 t0 t1 rc=0
  shift 2
  t0=$EPOCHREALTIME
  "$@" > "$RESULTS/last.out" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  if ((rc != 0)); then
    fail "$label: exit $rc: $(head -c 300 "$RESULTS/last.out" | tr '\n' ' ')"
    return 1
  fi
  [[ -n $file ]] && { ms_between "$t0" "$t1"; echo "$REPLY" >> "$file"; }
  return 0
}

ROWS=$RESULTS/table.tsv
: > "$ROWS"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$ROWS"; } # metric berth cd ratio goal met
ratio() { python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'{a/b:.2f}')" "$1" "$2"; }
le() { python3 -c "import sys; print('yes' if float(sys.argv[1]) <= float(sys.argv[2]) else 'no')" "$1" "$2"; }
ge() { python3 -c "import sys; print('yes' if float(sys.argv[1]) >= float(sys.argv[2]) else 'no')" "$1" "$2"; }

shims_of() { # berth | cd-host: PIDs of the per-task shims of that daemon
  local f a
  for f in /proc/[0-9]*/cmdline; do
    a=$({ tr '\0' ' ' < "$f"; } 2>/dev/null) || continue
    case $1 in
      # the serving shim re-execs itself as /proc/self/exe: match on the binary
      berth)
        [[ $a == *"$BDIR"* && $(readlink "${f%/cmdline}/exe" 2>/dev/null) == */berth-shim ]] || continue ;;
      *) [[ $a == *containerd-shim-runc-v2*"-address $W/$1/containerd.sock "* ]] || continue ;;
    esac
    f=${f#/proc/}
    echo "${f%/cmdline}"
  done
}

shim_of_task() { # berth | cd-host, ID: the PID of that task's shim (from its bundle)
  local p
  if [[ $1 == berth ]]; then cat "$BDIR/state/tasks/$NS/$2/shim.pid" 2> /dev/null; return; fi
  for p in $(shims_of "$1"); do
    [[ $({ tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null) == *"-id $2 "* ]] && { echo "$p"; return; }
  done
  return 1
}

running_count() { # CTRFUNC...: number of RUNNING tasks, or fails when ctr fails
  local out
  out=$("$@" tasks ls) || return 1
  awk 'NR > 1 && $3 == "RUNNING"' <<< "$out" | wc -l
}

# How slow creating a file is right now on the bench dir's disk: median µs of 100
# create+write+rename of a small file (every start creates a dozen: bundle, state and
# snapshot files, for either daemon). This disk is slow to create files for minutes
# after a mass delete (another run's clean-up, say); the figure tells such runs apart.
disk_probe() {
  python3 - "$W" <<'PY'
import os, statistics, sys, tempfile, time
d = tempfile.mkdtemp(dir=sys.argv[1], prefix="disk-probe.")
v = []
for i in range(100):
    t = time.perf_counter()
    with open(f"{d}/{i}.tmp", "w") as f:
        f.write("x" * 64)
    os.rename(f"{d}/{i}.tmp", f"{d}/{i}")
    v.append((time.perf_counter() - t) * 1e6)
for i in range(100):
    os.unlink(f"{d}/{i}")
os.rmdir(d)
print(round(statistics.median(v)))
PY
}

# ================================================================== main ====
log "bench dir $W, namespace $NS, results $RESULTS"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" > "$RESULTS/noise.txt"
echo "file create+rename at start: $(disk_probe) us (median of 100)" >> "$RESULTS/noise.txt"

build_image
start_registry
IMG=$REG_ADDR/busybox:latest
skopeo --policy "$W/image/policy.json" copy --quiet --dest-tls-verify=false \
  "oci:$W/image/oci:latest" "docker://$IMG"
log "image $IMG pushed"

start_berthd
start_containerd cd-host
want client && start_containerd cd-v1
bctr images pull --plain-http "$IMG" > /dev/null
cctr cd-host images pull --plain-http "$IMG" > /dev/null
want client && cctr cd-v1 images pull --plain-http "$IMG" > /dev/null
log "daemons up, image pulled (sections: $SECTIONS)"

# ---------------------------------------------------------------- e2e ----
if want e2e; then
log "e2e: ctr run --rm true, $WARM warm-up + $RUNS timed runs each, interleaved"
fe_b=$RESULTS/samples/e2e-berthd.txt fe_c=$RESULTS/samples/e2e-containerd-runc.txt
: > "$fe_b"; : > "$fe_c"
e2e_ok=1
for ((i = 0; i < WARM + RUNS; i++)); do
  tb=$fe_b tc=$fe_c
  ((i < WARM)) && tb= tc=
  timed_run "$tb" "berthd ctr run --rm #$i" bctr run --rm "$IMG" "e2e-b-$i" true || { e2e_ok=0; break; }
  timed_run "$tc" "containerd ctr run --rm #$i" cctr cd-host run --rm "$IMG" "e2e-c-$i" true || { e2e_ok=0; break; }
done
if ((e2e_ok)); then
  mb=$(median "$fe_b") mc=$(median "$fe_c") r=$(ratio "$(median "$fe_b")" "$(median "$fe_c")")
  row "ctr run --rm true: median ms (n=$RUNS)" "$mb" "$mc" "$r" "<= 0.70x" "$(le "$r" 0.70)"
  log "e2e: berthd $(stats "$fe_b") | containerd $(stats "$fe_c")  (n median min max mean)"
else
  row "ctr run --rm true: median ms" "not measured: ${FAILURES[-1]:0:80}" "-" "-" "<= 0.70x" "-"
fi
fi  # e2e

# ---------------------------------------------------------------- mem ----
if want mem; then
log "mem: $N_MEM sleeping tasks per daemon"
mem_ok=1
for ((i = 0; i < N_MEM; i++)); do
  timed_run "" "berthd run -d mem-$i" bctr run -d --null-io "$IMG" "mem-b-$i" sleep 100000 || { mem_ok=0; break; }
  timed_run "" "containerd run -d mem-$i" cctr cd-host run -d --null-io "$IMG" "mem-c-$i" sleep 100000 || { mem_ok=0; break; }
done
if ((mem_ok)); then
  sleep 2 # settle: shims finish start-up work before RSS is read
  for who in berth cd-host; do
    mapfile -t pids < <(shims_of "$who")
    f=$RESULTS/samples/shim-$who.tsv
    : > "$f"
    for p in "${pids[@]}"; do
      # VmRSS, threads, then Pss and private (clean + dirty) from smaps_rollup: RSS
      # counts shared code pages in every shim, Pss splits them, private is what one
      # more shim really adds.
      {
        awk '$1 == "VmRSS:" {r = $2} $1 == "Threads:" {t = $2} END {printf "%.3f\t%d", r / 1024, t}' "/proc/$p/status"
        awk '$1 == "Pss:" {p = $2} $1 == "Private_Clean:" || $1 == "Private_Dirty:" {v += $2} END {printf "\t%.3f\t%.3f\n", p / 1024, v / 1024}' "/proc/$p/smaps_rollup"
      } >> "$f"
    done
    log "mem: $who: ${#pids[@]} shims"
    [[ ${#pids[@]} == "$N_MEM" ]] || fail "mem: expected $N_MEM shims of $who, found ${#pids[@]}"
  done
  if [[ ! -s $RESULTS/samples/shim-berth.tsv || ! -s $RESULTS/samples/shim-cd-host.tsv ]]; then
    mem_ok=0
  fi
fi
if ((mem_ok)); then
  read -r rss_b thr_b < <(awk '{r += $1; t += $2; if ($2 > m) m = $2} END {printf "%.2f %d\n", r / NR, m}' "$RESULTS/samples/shim-berth.tsv")
  read -r rss_c thr_c < <(awk '{r += $1; t += $2; if ($2 > m) m = $2} END {printf "%.2f %d\n", r / NR, m}' "$RESULTS/samples/shim-cd-host.tsv")
  row "shim VmRSS, mean MiB ($N_MEM sleeping tasks)" "$rss_b" "$rss_c" "$(ratio "$rss_b" "$rss_c")" "<= 3 MiB" "$(le "$rss_b" 3)"
  row "threads per shim (max over shims)" "$thr_b" "$thr_c" "$(ratio "$thr_b" "$thr_c")" "<= 2" "$(le "$thr_b" 2)"
  read -r pss_b prv_b < <(awk '{p += $3; v += $4} END {printf "%.2f %.2f\n", p / NR, v / NR}' "$RESULTS/samples/shim-berth.tsv")
  read -r pss_c prv_c < <(awk '{p += $3; v += $4} END {printf "%.2f %.2f\n", p / NR, v / NR}' "$RESULTS/samples/shim-cd-host.tsv")
  row "  shim Pss, mean MiB" "$pss_b" "$pss_c" "$(ratio "$pss_b" "$pss_c")" "-" "-"
  row "  shim private (clean+dirty), mean MiB" "$prv_b" "$prv_c" "$(ratio "$prv_b" "$prv_c")" "-" "-"
  # berth-shim drops clean start-up code pages once idle; read RSS again right after
  # an RPC round trip (tasks ps) to every task, before that happens.
  for who in berth cd-host; do
    f=$RESULTS/samples/shim-busy-$who.tsv
    : > "$f"
    for ((i = 0; i < N_MEM; i++)); do
      if [[ $who == berth ]]; then bctr tasks ps "mem-b-$i" > /dev/null || continue
      else cctr cd-host tasks ps "mem-c-$i" > /dev/null || continue; fi
      p=$(shim_of_task "$who" "mem-${who:0:1}-$i") || continue
      awk '$1 == "VmRSS:" {printf "%.3f\n", $2 / 1024}' "/proc/$p/status" >> "$f"
    done
  done
  if [[ -s $RESULTS/samples/shim-busy-berth.tsv && -s $RESULTS/samples/shim-busy-cd-host.tsv ]]; then
    bb=$(awk '{r += $1} END {printf "%.2f", r / NR}' "$RESULTS/samples/shim-busy-berth.tsv")
    bc=$(awk '{r += $1} END {printf "%.2f", r / NR}' "$RESULTS/samples/shim-busy-cd-host.tsv")
    row "  shim VmRSS right after a tasks ps, mean MiB" "$bb" "$bc" "$(ratio "$bb" "$bc")" "-" "-"
  fi
else
  row "shim VmRSS / threads" "not measured: ${FAILURES[-1]:0:80}" "-" "-" "<= 3 MiB, <= 2" "-"
fi
fi  # mem

# --------------------------------------------------------------- thru ----
if want thru; then
log "thru: $N_THRU sequential ctr run -d per daemon, in two halves ordered berth, containerd, containerd, berth"
# ABBA halves: a drift of the host's load between the first and the last seconds
# weighs on both daemons alike (one block of 50 each favoured whoever ran in the
# quieter half).
declare -A thru_ms=([berth]=0 [cd-host]=0)
thru_ok=1
half=$((N_THRU / 2))
: > "$RESULTS/samples/thru-berth.txt"; : > "$RESULTS/samples/thru-cd-host.txt"
for who in berth cd-host cd-host berth; do
  f=$RESULTS/samples/thru-$who.txt
  if [[ $who == berth ]]; then from=${thru_next_b:-0}; else from=${thru_next_c:-0}; fi
  to=$((from == 0 ? half : N_THRU))
  t0=$EPOCHREALTIME
  for ((i = from; i < to; i++)); do
    if [[ $who == berth ]]; then
      timed_run "$f" "berthd thru #$i" bctr run -d --null-io "$IMG" "thru-b-$i" sleep 100000 || { thru_ok=0; break 2; }
    else
      timed_run "$f" "containerd thru #$i" cctr cd-host run -d --null-io "$IMG" "thru-c-$i" sleep 100000 || { thru_ok=0; break 2; }
    fi
  done
  ms_between "$t0" "$EPOCHREALTIME"
  thru_ms[$who]=$(python3 -c "print(f'{${thru_ms[$who]} + $REPLY:.3f}')")
  if [[ $who == berth ]]; then thru_next_b=$to; else thru_next_c=$to; fi
done
((thru_ok)) || thru_ms=()
if [[ -n ${thru_ms[berth]:-} && -n ${thru_ms[cd-host]:-} ]]; then
  rate_b=$(python3 -c "print(f'{$N_THRU / (${thru_ms[berth]} / 1000):.1f}')")
  rate_c=$(python3 -c "print(f'{$N_THRU / (${thru_ms[cd-host]} / 1000):.1f}')")
  row "$N_THRU sequential run -d: total ms" "${thru_ms[berth]}" "${thru_ms[cd-host]}" "$(ratio "${thru_ms[berth]}" "${thru_ms[cd-host]}")" "-" "-"
  r=$(ratio "$rate_b" "$rate_c")
  row "$N_THRU sequential run -d: starts/s" "$rate_b" "$rate_c" "${r}x rate" ">= 2x rate" "$(ge "$r" 2)"
else
  row "$N_THRU sequential run -d" "not measured: ${FAILURES[-1]:0:80}" "-" "-" ">= 2x rate" "-"
fi
fi  # thru

# ------------------------------------------------------------- restart ----
# Per round and daemon: kill -9, then restart it through ready_probe (spawns the daemon,
# dials its socket as soon as it accepts, Tasks.List back to back until N_LIVE RUNNING);
# then kill -9 again and restart it the old way, polling `ctr tasks ls` back to back.
restart_daemon_cmd() { # berth | cd-host -> RESTART_CMD (argv), RESTART_LOG, RESTART_SOCK
  if [[ $1 == berth ]]; then
    RESTART_CMD=("$BIN_DIR/berthd" --root "$BDIR/root" --state "$BDIR/state" --address "$BSOCK" --log-level info)
    RESTART_LOG=$BDIR/berthd.log RESTART_SOCK=$BSOCK
  else
    RESTART_CMD=("$CONTAINERD" --config "$W/cd-host/config.toml")
    RESTART_LOG=$W/cd-host/containerd.log RESTART_SOCK=$W/cd-host/containerd.sock
  fi
}
daemon_pid() { if [[ $1 == berth ]]; then echo "$B_PID"; else echo "${CD_PID[cd-host]}"; fi; }
set_daemon_pid() { if [[ $1 == berth ]]; then B_PID=$2; else CD_PID[cd-host]=$2; fi; }
PROBE_PID=
kill_daemon() { # berth | cd-host: kill -9 and wait until it is gone (reaped, locks free)
  local p i
  p=$(daemon_pid "$1")
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  if [[ -n $PROBE_PID ]]; then wait "$PROBE_PID" 2>/dev/null || true; PROBE_PID=; fi
  for ((i = 0; i < 1000; i++)); do alive "$p" || return 0; sleep 0.005; done
}

if want restart; then
restart_ok=1
for who in berth cd-host; do
  live=$(if [[ $who == berth ]]; then running_count bctr; else running_count cctr cd-host; fi) || live=0
  for ((i = live; i < N_LIVE; i++)); do
    if [[ $who == berth ]]; then
      timed_run "" "berthd live #$i" bctr run -d --null-io "$IMG" "live-b-$i" sleep 100000 || { restart_ok=0; break; }
    else
      timed_run "" "containerd live #$i" cctr cd-host run -d --null-io "$IMG" "live-c-$i" sleep 100000 || { restart_ok=0; break; }
    fi
  done
done
if ((restart_ok)); then
  log "restart: kill -9 with $N_LIVE live tasks, $N_RESTART rounds per daemon (probe + ctr loop)"
  for who in berth cd-host; do
    f=$RESULTS/samples/restart-$who.txt fo=$RESULTS/samples/restart-ctr-$who.txt
    fp=$RESULTS/samples/probe-$who.txt fl=$RESULTS/samples/list-$who.txt
    : > "$f"; : > "$fo"; : > "$fp"; : > "$fl"
    restart_daemon_cmd "$who"
    # The probes' own cost against the warm daemon: `ctr tasks ls`, and one Tasks.List.
    for ((k = 0; k < 5; k++)); do
      if [[ $who == berth ]]; then timed_run "$fp" "probe $who" bctr tasks ls || true
      else timed_run "$fp" "probe $who" cctr cd-host tasks ls || true; fi
    done
    if out=$("$PROBE" --socket "$RESTART_SOCK" --namespace "$NS" --count "$N_LIVE" --repeat 9); then
      out=${out#*list_ms=}; echo "${out%% *}" >> "$fl"
    else
      fail "restart: warm Tasks.List on $who failed"
    fi
    for ((k = 0; k < N_RESTART; k++)); do
      kill_daemon "$who"
      # --stay: the probe remains the daemon's parent; kill_daemon waits for it.
      pf=$RESULTS/samples/ready-probe-$who-$k.out # one per round: never a stale line
      : > "$pf"
      "$PROBE" --socket "$RESTART_SOCK" --namespace "$NS" --count "$N_LIVE" --stay \
        --timeout-ms 30000 --log "$RESTART_LOG" -- "${RESTART_CMD[@]}" > "$pf" 2>&1 &
      PROBE_PID=$!
      until grep -q ready_ms= "$pf"; do alive "$PROBE_PID" || break; sleep 0.01; done
      if ! out=$(grep ready_ms= "$pf"); then
        fail "restart: $who never listed $N_LIVE RUNNING tasks (ready_probe: $(head -c 200 "$pf"))"
        restart_ok=0; break 2
      fi
      p=${out#pid=}; set_daemon_pid "$who" "${p%% *}"
      ms=${out#*ready_ms=}; ms=${ms%% *}
      echo "$ms" >> "$f"
      log "restart: $who ready with $N_LIVE RUNNING after $ms ms (ready_probe: $out)"

      kill_daemon "$who"
      t0=$EPOCHREALTIME
      "${RESTART_CMD[@]}" >> "$RESTART_LOG" 2>&1 < /dev/null &
      set_daemon_pid "$who" $!
      if [[ $who == berth ]]; then probe=(bctr); else probe=(cctr cd-host); fi
      ready=0
      for ((n = 0; n < 3000; n++)); do
        if c=$(running_count "${probe[@]}" 2> /dev/null) && ((c == N_LIVE)); then ready=1; break; fi
        alive "$(daemon_pid "$who")" || break
      done
      t1=$EPOCHREALTIME
      if ((ready)); then
        ms_between "$t0" "$t1"; echo "$REPLY" >> "$fo"
        log "restart: $who ready with $N_LIVE RUNNING after $REPLY ms (ctr tasks ls loop, probe $((n + 1)) answered)"
      else
        fail "restart: $who never listed $N_LIVE RUNNING tasks (last count ${c:-none})"
        restart_ok=0; break 2
      fi
    done
  done
fi
if ((restart_ok)); then
  mb=$(median "$RESULTS/samples/restart-berth.txt") mc=$(median "$RESULTS/samples/restart-cd-host.txt")
  row "restart to ready, $N_LIVE live tasks (ready_probe): median ms (n=$N_RESTART)" "$mb" "$mc" "$(ratio "$mb" "$mc")" "<= 50 ms" "$(le "$mb" 50)"
  mb=$(median "$RESULTS/samples/restart-ctr-berth.txt") mc=$(median "$RESULTS/samples/restart-ctr-cd-host.txt")
  row "restart to ready, $N_LIVE live tasks (ctr tasks ls loop): median ms (n=$N_RESTART)" "$mb" "$mc" "$(ratio "$mb" "$mc")" "-" "-"
  pb=$(median "$RESULTS/samples/probe-berth.txt") pc=$(median "$RESULTS/samples/probe-cd-host.txt")
  row "  one ctr tasks ls, warm daemon: median ms (n=5)" "$pb" "$pc" "$(ratio "$pb" "$pc")" "-" "-"
  pb=$(median "$RESULTS/samples/list-berth.txt") pc=$(median "$RESULTS/samples/list-cd-host.txt")
  row "  one Tasks.List ($N_LIVE tasks), warm daemon: median of 9, ms" "$pb" "$pc" "$(ratio "$pb" "$pc")" "-" "-"
else
  row "restart to ready, $N_LIVE live tasks" "not measured: ${FAILURES[-1]:0:80}" "-" "-" "<= 50 ms" "-"
fi
fi  # restart

# -------------------------------------------------------------- client ----
if want client; then
log "client: berthctl run --rm vs ctr run --rm on containerd+runc / containerd+crun"
fc_b=$RESULTS/samples/berthctl-run.txt fc_r=$RESULTS/samples/cd-runc-run.txt fc_c=$RESULTS/samples/cd-crun-run.txt
: > "$fc_b"; : > "$fc_r"; : > "$fc_c"
BCTL=$BIN_DIR/berthctl
client_reason=
if [[ ! -x $BCTL ]]; then
  client_reason="$BCTL is not built"
elif ! out=$("$BCTL" --address "$BSOCK" -n "$NS" run --rm --name cli-probe "$IMG" sh -c 'echo berthctl-ok' 2>&1) ||
  [[ $out != *berthctl-ok* ]]; then
  client_reason="berthctl run failed: $(head -c 120 <<< "$out" | tr '\n' ' ')"
fi
cr_ok=1
for ((i = 0; i < WARM + RUNS; i++)); do
  tb=$fc_b tr=$fc_r tcr=$fc_c
  ((i < WARM)) && tb= tr= tcr=
  if [[ -z $client_reason ]]; then
    timed_run "$tb" "berthctl run --rm #$i" "$BCTL" --address "$BSOCK" -n "$NS" run --rm --name "cli-b-$i" "$IMG" true ||
      client_reason="berthctl run --rm failed at run $i (see failures)"
  fi
  timed_run "$tr" "containerd+runc run --rm #$i" cctr cd-host run --rm "$IMG" "cli-r-$i" true || { cr_ok=0; break; }
  timed_run "$tcr" "containerd+crun run --rm #$i" cctr cd-v1 run --rm --runc-binary "$CRUN" "$IMG" "cli-c-$i" true || { cr_ok=0; break; }
done
if ((cr_ok)); then
  mr=$(median "$fc_r") mcr=$(median "$fc_c")
  log "client: containerd+runc $(stats "$fc_r") | containerd+crun $(stats "$fc_c")"
  if [[ -z $client_reason ]]; then
    mb=$(median "$fc_b")
    log "client: berthctl $(stats "$fc_b")"
    row "berthctl run --rm vs ctr+containerd+runc: median ms (n=$RUNS)" "$mb" "$mr" "$(ratio "$mb" "$mr")" "-" "-"
    r=$(ratio "$mb" "$mcr")
    row "berthctl run --rm vs ctr+containerd+crun: median ms (n=$RUNS)" "$mb" "$mcr" "$r" "<= 0.50x" "$(le "$r" 0.5)"
  else
    row "berthctl run --rm vs ctr+containerd+runc: median ms" "not measured: $client_reason" "$mr" "-" "-" "-"
    row "berthctl run --rm vs ctr+containerd+crun: median ms" "not measured: $client_reason" "$mcr" "-" "<= 0.50x" "-"
  fi
else
  row "berthctl run --rm vs containerd runc/crun" "not measured: ${FAILURES[-1]:0:80}" "-" "-" "<= 0.50x" "-"
fi
fi  # client

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RESULTS/noise.txt"
echo "file create+rename at end: $(disk_probe) us (median of 100)" >> "$RESULTS/noise.txt"
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# --------------------------------------------------------------- table ----
{
  echo
  echo "berth vs containerd 1.6.20 (same ctr $("$CTR" --version | awk '{print $3}'), same image $IMG)"
  cat "$RESULTS/noise.txt"
  python3 - "$ROWS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
hdr = ["metric", "berth", "containerd", "ratio", "goal", "met?"]
w = [max(len(r[i]) for r in rows + [hdr]) for i in range(6)]
fmt = lambda r: "  ".join(c.ljust(w[i]) for i, c in enumerate(r))
print(fmt(hdr)); print("  ".join("-" * x for x in w))
for r in rows: print(fmt(r))
PY
  if ((${#FAILURES[@]})); then
    echo
    echo "failures:"
    printf '  - %s\n' "${FAILURES[@]}"
  fi
} | tee "$RESULTS/table.txt"
