//! The runtime's stats JSON (runc's `events --stats` shape:
//! `{"type":"stats","id":…,"data":{"cpu":{"usage":{…}},"memory":{…},…}}`; the
//! flat field names of berth-runtime's `Stats` are accepted too) turned into
//! containerd's cgroup metrics: `io.containerd.cgroups.v1.Metrics` on v1 and
//! hybrid hosts, `io.containerd.cgroups.v2.Metrics` on unified hosts.
//! `memory.usage` and `cpu.usage` are always filled: ctr dereferences them.

use berth_api::io::containerd::cgroups::{v1, v2};
use prost_types::Any;
use serde_json::Value;

/// Whether the host runs the unified (v2-only) hierarchy.
pub fn unified_host() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

fn data(stats: &Value) -> &Value {
    stats.get("data").unwrap_or(stats)
}

/// The first of `paths` (each a list of keys) that holds a number.
fn num(v: &Value, paths: &[&[&str]]) -> u64 {
    for path in paths {
        let mut cur = v;
        let mut found = true;
        for k in *path {
            match cur.get(k) {
                Some(next) => cur = next,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if found && let Some(n) = cur.as_u64() {
            return n;
        }
    }
    0
}

fn list(v: &Value, paths: &[&[&str]]) -> Vec<u64> {
    for path in paths {
        let mut cur = Some(v);
        for k in *path {
            cur = cur.and_then(|c| c.get(k));
        }
        if let Some(a) = cur.and_then(Value::as_array) {
            return a.iter().filter_map(Value::as_u64).collect();
        }
    }
    Vec::new()
}

fn raw(d: &Value, key: &str) -> u64 {
    num(d, &[&["memory", "raw", key], &["memory", "stats", key]])
}

fn entry(d: &Value, name: &str) -> v1::MemoryEntry {
    v1::MemoryEntry {
        limit: num(d, &[&["memory", name, "limit"]]),
        usage: num(d, &[&["memory", name, "usage"]]),
        max: num(d, &[&["memory", name, "max"]]),
        failcnt: num(d, &[&["memory", name, "failcnt"]]),
    }
}

fn blkio(d: &Value, keys: &[&str]) -> Vec<v1::BlkIoEntry> {
    for k in keys {
        if let Some(a) = d
            .get("blkio")
            .and_then(|b| b.get(*k))
            .and_then(Value::as_array)
        {
            return a
                .iter()
                .map(|e| v1::BlkIoEntry {
                    op: e.get("op").and_then(Value::as_str).unwrap_or("").to_owned(),
                    device: String::new(),
                    major: num(e, &[&["major"]]),
                    minor: num(e, &[&["minor"]]),
                    value: num(e, &[&["value"]]),
                })
                .collect();
        }
    }
    Vec::new()
}

/// cgroup v1 metrics.
pub fn v1_metrics(stats: &Value) -> v1::Metrics {
    let d = data(stats);
    let mut usage = entry(d, "usage");
    if usage.usage == 0 {
        usage.usage = num(d, &[&["memory", "usage"]]);
        usage.limit = num(d, &[&["memory", "limit"]]);
        usage.max = num(d, &[&["memory", "max_usage"]]);
    }
    let mut swap = entry(d, "swap");
    if swap.usage == 0 {
        swap.usage = num(d, &[&["memory", "swap_usage"]]);
        swap.limit = num(d, &[&["memory", "swap_limit"]]);
    }
    let hugetlb = d
        .get("hugetlb")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(size, h)| v1::HugetlbStat {
                    usage: num(h, &[&["usage"]]),
                    max: num(h, &[&["max"], &["max_usage"]]),
                    failcnt: num(h, &[&["failcnt"]]),
                    pagesize: size.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    v1::Metrics {
        hugetlb,
        pids: Some(v1::PidsStat {
            current: num(d, &[&["pids", "current"]]),
            limit: num(d, &[&["pids", "limit"]]),
        }),
        cpu: Some(v1::CpuStat {
            usage: Some(v1::CpuUsage {
                total: num(d, &[&["cpu", "usage", "total"], &["cpu", "usage_total"]]),
                kernel: num(d, &[&["cpu", "usage", "kernel"], &["cpu", "usage_kernel"]]),
                user: num(d, &[&["cpu", "usage", "user"], &["cpu", "usage_user"]]),
                per_cpu: list(d, &[&["cpu", "usage", "percpu"], &["cpu", "per_cpu"]]),
            }),
            throttling: Some(v1::Throttle {
                periods: num(
                    d,
                    &[
                        &["cpu", "throttling", "periods"],
                        &["cpu", "throttling_periods"],
                    ],
                ),
                throttled_periods: num(
                    d,
                    &[
                        &["cpu", "throttling", "throttled_periods"],
                        &["cpu", "throttled_periods"],
                    ],
                ),
                throttled_time: num(
                    d,
                    &[
                        &["cpu", "throttling", "throttled_time"],
                        &["cpu", "throttled_time"],
                    ],
                ),
            }),
        }),
        memory: Some(v1::MemoryStat {
            cache: num(d, &[&["memory", "cache"], &["memory", "raw", "cache"]]),
            rss: raw(d, "rss"),
            rss_huge: raw(d, "rss_huge"),
            mapped_file: raw(d, "mapped_file"),
            dirty: raw(d, "dirty"),
            writeback: raw(d, "writeback"),
            pg_pg_in: raw(d, "pgpgin"),
            pg_pg_out: raw(d, "pgpgout"),
            pg_fault: raw(d, "pgfault"),
            pg_maj_fault: raw(d, "pgmajfault"),
            inactive_anon: raw(d, "inactive_anon"),
            active_anon: raw(d, "active_anon"),
            inactive_file: raw(d, "inactive_file"),
            active_file: raw(d, "active_file"),
            unevictable: raw(d, "unevictable"),
            hierarchical_memory_limit: raw(d, "hierarchical_memory_limit"),
            hierarchical_swap_limit: raw(d, "hierarchical_memsw_limit"),
            total_cache: raw(d, "total_cache"),
            total_rss: raw(d, "total_rss"),
            total_rss_huge: raw(d, "total_rss_huge"),
            total_mapped_file: raw(d, "total_mapped_file"),
            total_dirty: raw(d, "total_dirty"),
            total_writeback: raw(d, "total_writeback"),
            total_pg_pg_in: raw(d, "total_pgpgin"),
            total_pg_pg_out: raw(d, "total_pgpgout"),
            total_pg_fault: raw(d, "total_pgfault"),
            total_pg_maj_fault: raw(d, "total_pgmajfault"),
            total_inactive_anon: raw(d, "total_inactive_anon"),
            total_active_anon: raw(d, "total_active_anon"),
            total_inactive_file: raw(d, "total_inactive_file"),
            total_active_file: raw(d, "total_active_file"),
            total_unevictable: raw(d, "total_unevictable"),
            usage: Some(usage),
            swap: Some(swap),
            kernel: Some(entry(d, "kernel")),
            kernel_tcp: Some(entry(d, "kernelTCP")),
        }),
        blkio: Some(v1::BlkIoStat {
            io_service_bytes_recursive: blkio(d, &["ioServiceBytesRecursive", "io_service_bytes"]),
            io_serviced_recursive: blkio(d, &["ioServicedRecursive", "io_serviced"]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// cgroup v2 metrics.
pub fn v2_metrics(stats: &Value) -> v2::Metrics {
    let d = data(stats);
    let usage = num(d, &[&["memory", "usage", "usage"], &["memory", "usage"]]);
    let limit = num(d, &[&["memory", "usage", "limit"], &["memory", "limit"]]);
    v2::Metrics {
        pids: Some(v2::PidsStat {
            current: num(d, &[&["pids", "current"]]),
            limit: num(d, &[&["pids", "limit"]]),
        }),
        cpu: Some(v2::CpuStat {
            usage_usec: num(d, &[&["cpu", "usage", "total"], &["cpu", "usage_total"]]) / 1000,
            user_usec: num(d, &[&["cpu", "usage", "user"], &["cpu", "usage_user"]]) / 1000,
            system_usec: num(d, &[&["cpu", "usage", "kernel"], &["cpu", "usage_kernel"]]) / 1000,
            nr_periods: num(
                d,
                &[
                    &["cpu", "throttling", "periods"],
                    &["cpu", "throttling_periods"],
                ],
            ),
            nr_throttled: num(
                d,
                &[
                    &["cpu", "throttling", "throttled_periods"],
                    &["cpu", "throttled_periods"],
                ],
            ),
            throttled_usec: num(
                d,
                &[
                    &["cpu", "throttling", "throttled_time"],
                    &["cpu", "throttled_time"],
                ],
            ) / 1000,
        }),
        memory: Some(v2::MemoryStat {
            anon: raw(d, "anon"),
            file: raw(d, "file"),
            kernel_stack: raw(d, "kernel_stack"),
            slab: raw(d, "slab"),
            sock: raw(d, "sock"),
            shmem: raw(d, "shmem"),
            file_mapped: raw(d, "file_mapped"),
            file_dirty: raw(d, "file_dirty"),
            file_writeback: raw(d, "file_writeback"),
            inactive_anon: raw(d, "inactive_anon"),
            active_anon: raw(d, "active_anon"),
            inactive_file: raw(d, "inactive_file"),
            active_file: raw(d, "active_file"),
            unevictable: raw(d, "unevictable"),
            pgfault: raw(d, "pgfault"),
            pgmajfault: raw(d, "pgmajfault"),
            usage,
            usage_limit: limit,
            swap_usage: num(
                d,
                &[&["memory", "swap", "usage"], &["memory", "swap_usage"]],
            ),
            swap_limit: num(
                d,
                &[&["memory", "swap", "limit"], &["memory", "swap_limit"]],
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The metrics Any for this host.
pub fn pack_for_host(stats: &Value, unified: bool) -> Any {
    if unified {
        berth_api::any::pack(&v2_metrics(stats))
    } else {
        berth_api::any::pack(&v1_metrics(stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runc_shape_fills_nested_usage() {
        let s = json!({"type": "stats", "id": "c", "data": {
            "cpu": {"usage": {"total": 5000, "kernel": 2000, "user": 3000, "percpu": [4000, 1000]},
                    "throttling": {"periods": 3}},
            "memory": {"cache": 7, "usage": {"usage": 100, "limit": 200, "max": 150, "failcnt": 1},
                       "raw": {"rss": 9, "total_cache": 11}},
            "pids": {"current": 2, "limit": 10},
            "blkio": {"ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 4096}]}
        }});
        let m = v1_metrics(&s);
        let cpu = m.cpu.expect("cpu").usage.expect("cpu.usage");
        assert_eq!((cpu.total, cpu.kernel, cpu.user), (5000, 2000, 3000));
        assert_eq!(cpu.per_cpu, vec![4000, 1000]);
        let mem = m.memory.expect("memory");
        let u = mem.usage.expect("memory.usage");
        assert_eq!((u.usage, u.limit, u.max, u.failcnt), (100, 200, 150, 1));
        assert_eq!((mem.cache, mem.rss, mem.total_cache), (7, 9, 11));
        assert_eq!(m.pids.expect("pids").current, 2);
        let b = m.blkio.expect("blkio").io_service_bytes_recursive;
        assert_eq!(
            (b[0].major, b[0].op.as_str(), b[0].value),
            (8, "Read", 4096)
        );

        let v2 = v2_metrics(&s);
        assert_eq!(v2.cpu.expect("cpu").usage_usec, 5);
        assert_eq!(v2.memory.expect("memory").usage, 100);
    }

    #[test]
    fn flat_shape_is_accepted_and_empty_input_still_has_usage() {
        let s = json!({"cpu": {"usage_total": 8, "usage_user": 5, "usage_kernel": 3, "per_cpu": [8]},
                       "memory": {"usage": 64, "limit": 128, "max_usage": 70, "cache": 1}});
        let m = v1_metrics(&s);
        assert_eq!(m.cpu.expect("cpu").usage.expect("usage").total, 8);
        let u = m.memory.expect("memory").usage.expect("usage");
        assert_eq!((u.usage, u.limit, u.max), (64, 128, 70));

        let empty = v1_metrics(&json!({}));
        assert!(empty.memory.expect("memory").usage.is_some());
        assert!(empty.cpu.expect("cpu").usage.is_some());
        let any = pack_for_host(&json!({}), false);
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        assert_eq!(
            pack_for_host(&json!({}), true).type_url,
            "io.containerd.cgroups.v2.Metrics"
        );
    }
}
