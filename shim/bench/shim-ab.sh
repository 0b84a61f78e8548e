#!/usr/bin/env bash
# shim/bench/shim-ab.sh: the shim's memory and start path, two builds side by side.
#
#   shim-ab.sh A_BIN_DIR [B_BIN_DIR]      (as root; each dir holds berthd + berth-shim)
#
# Starts one private berthd per build (own --root/--state/--address under one temp dir,
# one namespace), imports the offline busybox image (scripts/busybox-image.sh) and, with
# the runs of A and B interleaved:
#   rm      `ctr run --rm IMG id true`, RUNS times: end-to-end ms
#   rund    `ctr run -d --null-io IMG id sleep 100000`, RUNS times: end-to-end ms, and
#           berthd's own figures from its log (shim_start_ms = `berth-shim start` +
#           connect, total_ms = that + the shim's Create)
#   mem     after N_MEM sleeping tasks per build: VmRSS/Threads of every shim after 2 s,
#           after 12 s, right after a `tasks ps` + `tasks exec` round trip with its task
#           (after-rpc-0s) and 2 s after the last round trip (after-rpc);
#           the smaps breakdown (by mapping) of one shim at 2 s and at the end
#   thru    N_THRU sequential `ctr run -d`: total ms per build
# Everything it started (tasks, shims, mounts, cgroups, daemons) is removed at exit.
#   steps   with PERF=1: per-step times of the start path from exec/exit/fork/accept/mount
#           tracepoints (perf record -a; shim/bench/start-steps.py), per build
# Environment: RUNS (12), N_MEM (20), N_THRU (50), CTR (/usr/bin/ctr), OUT (results dir),
#              PERF (0).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")/../.." && pwd)
A=${1:?usage: shim-ab.sh A_BIN_DIR [B_BIN_DIR]}
B=${2:-}
RUNS=${RUNS:-12}
N_MEM=${N_MEM:-20}
N_THRU=${N_THRU:-50}
CTR=${CTR:-/usr/bin/ctr}
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }

W=$(mktemp -d /tmp/shim-ab.XXXXXX)
OUT=${OUT:-$W.out}
mkdir -p "$OUT"
NS=shimab-$$
IMG=localhost/shimab:latest
declare -A DIR=([A]=$A) PID=()
builds=(A)
[[ -n $B ]] && { DIR[B]=$B; builds+=(B); }

log() { printf '[shim-ab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
c() { local w=$1; shift; "$CTR" --address "$W/$w/b.sock" --namespace "$NS" "$@"; }
alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
ms() { # T0 T1 -> ms
  local a=${1/./} b=${2/./}
  printf '%d.%03d' $(((10#$b - 10#$a) / 1000)) $(((10#$b - 10#$a) % 1000))
}
shims() { # build -> serving shim pids
  local f
  for f in /proc/[0-9]*/cmdline; do
    { tr '\0' ' ' < "$f"; } 2>/dev/null | grep -q "^berth-shim serve .*$W/$1/" || continue
    f=${f#/proc/}; echo "${f%/cmdline}"
  done
}

cleanup() {
  local rc=$? w p m d
  trap - EXIT INT TERM
  set +e
  log "cleanup"
  for w in "${builds[@]}"; do
    [[ -n ${PID[$w]:-} ]] && alive "${PID[$w]}" || continue
    mapfile -t ids < <(c "$w" tasks ls -q 2>/dev/null)
    ((${#ids[@]})) && printf '%s\n' "${ids[@]}" | xargs -r -n 10 "$CTR" --address "$W/$w/b.sock" --namespace "$NS" tasks kill -s SIGKILL > /dev/null 2>&1
    ((${#ids[@]})) && printf '%s\n' "${ids[@]}" | xargs -r -n 10 "$CTR" --address "$W/$w/b.sock" --namespace "$NS" tasks rm -f > /dev/null 2>&1
    mapfile -t ids < <(c "$w" containers ls -q 2>/dev/null)
    ((${#ids[@]})) && printf '%s\n' "${ids[@]}" | xargs -r -n 20 "$CTR" --address "$W/$w/b.sock" --namespace "$NS" containers rm > /dev/null 2>&1
    kill -TERM "${PID[$w]}"
    for ((i = 0; i < 100; i++)); do alive "${PID[$w]}" || break; sleep 0.05; done
    alive "${PID[$w]}" && kill -KILL "${PID[$w]}"
    wait "${PID[$w]}" 2>/dev/null
  done
  for w in "${builds[@]}"; do
    for p in $(shims "$w"); do log "killing leftover shim $p"; kill -KILL "$p"; done
  done
  for p in $(grep -l -- "/$NS/" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3); do
    kill -KILL "$p" 2>/dev/null
  done
  sleep 0.2
  for m in $(awk -v d="$W" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/*/berth/"$NS"; do
    [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  for w in "${builds[@]}"; do cp "$W/$w/berthd.log" "$OUT/berthd-$w.log" 2>/dev/null; done
  rm -rf "$W"
  log "done; results in $OUT"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$here/scripts/busybox-image.sh" "$W/busybox.tar" "$IMG" > /dev/null
for w in "${builds[@]}"; do
  mkdir -p "$W/$w"
  "${DIR[$w]}/berthd" --root "$W/$w/root" --state "$W/$w/state" --address "$W/$w/b.sock" \
    --log-level info >> "$W/$w/berthd.log" 2>&1 < /dev/null &
  PID[$w]=$!
  for ((i = 0; i < 500; i++)); do c "$w" version > /dev/null 2>&1 && break; sleep 0.02; done
  c "$w" images import "$W/busybox.tar" > /dev/null
  log "$w: berthd ${PID[$w]} from ${DIR[$w]}"
done

timed() { # FILE CMD...: appends ms to FILE
  local f=$1 t0 t1
  shift
  t0=$EPOCHREALTIME
  "$@" > "$W/last.out" 2>&1 || { log "FAILED: $*: $(head -c 300 "$W/last.out")"; exit 1; }
  t1=$EPOCHREALTIME
  ms "$t0" "$t1" >> "$f"; echo >> "$f"
}
stats() { # FILE -> "n median min max"
  python3 -c '
import statistics, sys
v = [float(x) for x in open(sys.argv[1]) if x.strip()]
print(len(v), f"{statistics.median(v):.1f}", f"{min(v):.1f}", f"{max(v):.1f}") if v else print("0 - - -")' "$1"
}

# warm-up
for w in "${builds[@]}"; do c "$w" run --rm "$IMG" "warm-$w" true > /dev/null; done

log "rm + rund: $RUNS runs each, interleaved"
PERF_PID=
if [[ ${PERF:-0} == 1 ]]; then
  perf record -q -a -o "$OUT/perf.data" -e sched:sched_process_exec -e sched:sched_process_exit \
    -e sched:sched_process_fork -e syscalls:sys_enter_accept4 -e syscalls:sys_enter_mount 2> /dev/null &
  PERF_PID=$!
  sleep 1
fi
for ((i = 0; i < RUNS; i++)); do
  for w in "${builds[@]}"; do
    timed "$OUT/rm-$w.txt" c "$w" run --rm "$IMG" "rm-$w-$i" true
    timed "$OUT/rund-$w.txt" c "$w" run -d --null-io "$IMG" "rund-$w-$i" sleep 100000
  done
done
if [[ -n $PERF_PID ]]; then
  kill -INT "$PERF_PID"; wait "$PERF_PID" || true
  python3 "$here/shim/bench/start-steps.py" "$OUT/perf.data" | tee -a "$OUT/summary.txt"
fi
for w in "${builds[@]}"; do
  sed 's/\x1b\[[0-9;]*m//g' "$W/$w/berthd.log" > "$W/$w/plain.log"
  grep -o 'shim_start_ms=[0-9.]*' "$W/$w/plain.log" | cut -d= -f2 | tail -n $((2 * RUNS)) > "$OUT/shimstart-$w.txt" || true
  grep -o 'total_ms=[0-9.]*' "$W/$w/plain.log" | cut -d= -f2 | tail -n $((2 * RUNS)) > "$OUT/create-$w.txt" || true
  for k in rm rund shimstart create; do
    printf '%-4s %-10s n/median/min/max: %s\n' "$w" "$k" "$(stats "$OUT/$k-$w.txt")" | tee -a "$OUT/summary.txt"
  done
done

breakdown() { # PID -> Rss/Pss by mapping class
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / { n = split($0, f, " "); name = ((n >= 6) ? f[6] : "[anon]") " " f[2]; next }
    /^Rss:/ { rss[name] += $2 } /^Pss:/ { pss[name] += $2 }
    /^Anonymous:/ { anon[name] += $2 }
    END { for (k in rss) if (rss[k]) printf "  %-60s rss %6d kB  pss %6d kB  anon %6d kB\n", k, rss[k], pss[k], anon[k] }
  ' "/proc/$1/smaps" | sort -k3 -n -r
}
rss_all() { # build label
  local w=$1 p
  : > "$OUT/rss-$w-$2.tsv"
  for p in $(shims "$w"); do
    awk '$1 == "VmRSS:" {r = $2} $1 == "Threads:" {t = $2} END {printf "%.3f\t%d\n", r / 1024, t}' "/proc/$p/status" >> "$OUT/rss-$w-$2.tsv"
  done
  printf '%-4s rss %-9s %s\n' "$w" "$2" "$(awk '{r += $1; if ($2 > m) m = $2; if (min == "" || $1 < min) min = $1; if ($1 > max) max = $1} END {printf "n=%d mean %.2f MiB min %.2f max %.2f threads max %d", NR, r / NR, min, max, m}' "$OUT/rss-$w-$2.tsv")" | tee -a "$OUT/summary.txt"
}

log "mem: $N_MEM sleeping tasks per build"
for ((i = 0; i < N_MEM; i++)); do
  for w in "${builds[@]}"; do c "$w" run -d --null-io "$IMG" "mem-$w-$i" sleep 100000 > /dev/null; done
done
sleep 2
for w in "${builds[@]}"; do
  rss_all "$w" 2s
  p=$(cat "$W/$w/state/tasks/$NS/mem-$w-0/shim.pid")
  { echo "== $w shim $p after 2 s"; breakdown "$p"; } >> "$OUT/smaps.txt"
done
sleep 10
for w in "${builds[@]}"; do rss_all "$w" 12s; done
for w in "${builds[@]}"; do : > "$OUT/rss-$w-after-rpc-0s.tsv"; done
for ((i = 0; i < N_MEM; i++)); do
  for w in "${builds[@]}"; do
    c "$w" tasks ps "mem-$w-$i" > /dev/null
    c "$w" tasks exec --exec-id e1 "mem-$w-$i" true > /dev/null
    # this shim's RSS right after its round trip
    p=$(cat "$W/$w/state/tasks/$NS/mem-$w-$i/shim.pid")
    awk '$1 == "VmRSS:" {printf "%.3f\n", $2 / 1024}' "/proc/$p/status" >> "$OUT/rss-$w-after-rpc-0s.tsv"
  done
done
for w in "${builds[@]}"; do
  printf '%-4s rss after-rpc-0s n=%d mean %s MiB\n' "$w" "$(wc -l < "$OUT/rss-$w-after-rpc-0s.tsv")" \
    "$(awk '{r += $1} END {printf "%.2f", r / NR}' "$OUT/rss-$w-after-rpc-0s.tsv")" | tee -a "$OUT/summary.txt"
done
sleep 2
for w in "${builds[@]}"; do
  rss_all "$w" after-rpc
  p=$(cat "$W/$w/state/tasks/$NS/mem-$w-0/shim.pid")
  { echo "== $w shim $p after ps+exec"; breakdown "$p"; } >> "$OUT/smaps.txt"
done

log "thru: $N_THRU sequential run -d per build"
for w in "${builds[@]}"; do
  t0=$EPOCHREALTIME
  for ((i = 0; i < N_THRU; i++)); do c "$w" run -d --null-io "$IMG" "thru-$w-$i" sleep 100000 > /dev/null; done
  t1=$EPOCHREALTIME
  printf '%-4s thru %d run -d: %s ms\n' "$w" "$N_THRU" "$(ms "$t0" "$t1")" | tee -a "$OUT/summary.txt"
done
cat "$OUT/smaps.txt" >&2
