#!/usr/bin/env bash
# bench/runtime.sh: `run` of busybox `true` (create + start + wait + delete) through
# berth-runc, runc and crun on the same bundle, in the same hyperfine run; prints the
# medians and the ratios against crun.
#
# Usage (as root):  bench/runtime.sh [RUNS]
# Environment:      BERTH_RUNC (default target-rt/release/berth-runc, else target/release),
#                   RUNC (/usr/sbin/runc), CRUN (/usr/bin/crun), HYPERFINE (/usr/bin/hyperfine)
#
# crun 1.8 refuses hybrid cgroup hosts, so the whole benchmark runs in a private mount
# namespace where /sys/fs/cgroup/unified is lazily unmounted: all three runtimes see the
# same cgroup v1 host and none pays for the workaround inside the timed command.
set -euo pipefail

RUNS=${1:-30}
here=$(cd "$(dirname "$0")/.." && pwd)
BERTH_RUNC=${BERTH_RUNC:-}
if [[ -z $BERTH_RUNC ]]; then
  for c in "$here/target-rt/release/berth-runc" "$here/target/release/berth-runc"; do
    [[ -x $c ]] && { BERTH_RUNC=$c; break; }
  done
fi
RUNC=${RUNC:-/usr/sbin/runc}
CRUN=${CRUN:-/usr/bin/crun}
HYPERFINE=${HYPERFINE:-/usr/bin/hyperfine}
for b in "$BERTH_RUNC" "$RUNC" "$CRUN" "$HYPERFINE"; do
  [[ -x $b ]] || { echo "missing executable: ${b:-berth-runc (build it: cargo build --release -p berth-runtime)}" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }

work=$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)
trap 'rm -rf "$work"' EXIT
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" "$bundle/rootfs/etc"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
  [[ $a == busybox ]] || ln -s busybox "$bundle/rootfs/bin/$a"
done
# runc's default spec, made non-interactive, running `true`.
(cd "$bundle" && "$RUNC" spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open(p, "w"), indent=1)
PY

id=bench-$$
json=$work/result.json
inner=$(cat <<SH
set -e
umount -l /sys/fs/cgroup/unified 2>/dev/null || true
"$HYPERFINE" --shell=none --warmup 3 --runs "$RUNS" --export-json "$json" \
  -n berth-runc "$BERTH_RUNC --root $work/state-berth run -b $bundle $id-berth" \
  -n runc "$RUNC --root $work/state-runc run -b $bundle $id-runc" \
  -n crun "$CRUN --root $work/state-crun run -b $bundle $id-crun"
SH
)
unshare -m --propagation private sh -c "$inner"

python3 - "$json" <<'PY'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
crun = res["crun"]["median"]
print()
print(f"{'runtime':<12} {'median':>10} {'mean':>10} {'vs crun':>8}")
for name in ("berth-runc", "runc", "crun"):
    r = res[name]
    print(f"{name:<12} {r['median']*1000:>8.2f}ms {r['mean']*1000:>8.2f}ms {r['median']/crun:>7.2f}x")
PY
