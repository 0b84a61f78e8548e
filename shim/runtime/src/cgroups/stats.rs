//! Cgroup statistics as plain Rust values (the shim converts them to containerd's
//! metrics) and the v1/v2 file parsers that fill them.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::{CgroupError, read_file};

/// Usage of a container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    /// Keyed by page size ("2MB").
    pub hugetlb: HashMap<String, HugetlbStats>,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuStats {
    pub usage_total: u64,
    pub usage_user: u64,
    pub usage_kernel: u64,
    pub per_cpu: Vec<u64>,
    pub throttling_periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

/// Memory in bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryStats {
    pub usage: u64,
    pub max_usage: u64,
    pub limit: u64,
    pub cache: u64,
    pub swap_usage: u64,
    pub swap_limit: u64,
    /// The raw `memory.stat` keys.
    pub raw: HashMap<String, u64>,
}

/// Task counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PidsStats {
    pub current: u64,
    /// 0 means unlimited.
    pub limit: u64,
}

/// One per-device counter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Block I/O counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlkioStats {
    pub io_service_bytes: Vec<BlkioEntry>,
    pub io_serviced: Vec<BlkioEntry>,
}

/// Hugetlb usage in bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HugetlbStats {
    pub usage: u64,
    pub max_usage: u64,
    pub failcnt: u64,
}

fn num(s: &str) -> u64 {
    let s = s.trim();
    if s == "max" {
        return u64::MAX;
    }
    s.parse().unwrap_or(0)
}

fn read_num(dir: &Path, f: &str) -> Option<u64> {
    read_file(dir, f).ok().map(|s| num(&s))
}

fn flat_keyed(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), num(v)))
        .collect()
}

pub(crate) fn v1_cpu(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    s.cpu.usage_total = num(&read_file(dir, "cpuacct.usage")?);
    s.cpu.per_cpu = read_file(dir, "cpuacct.usage_percpu")
        .unwrap_or_default()
        .split_whitespace()
        .map(num)
        .collect();
    if let Ok(t) = read_file(dir, "cpuacct.stat") {
        // USER_HZ ticks to nanoseconds.
        let k = flat_keyed(&t);
        s.cpu.usage_user = k.get("user").copied().unwrap_or(0) * 10_000_000;
        s.cpu.usage_kernel = k.get("system").copied().unwrap_or(0) * 10_000_000;
    }
    Ok(())
}

pub(crate) fn v1_throttling(dir: &Path, s: &mut Stats) {
    if let Ok(t) = read_file(dir, "cpu.stat") {
        let k = flat_keyed(&t);
        s.cpu.throttling_periods = k.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttled_periods = k.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttled_time = k.get("throttled_time").copied().unwrap_or(0);
    }
}

pub(crate) fn v1_memory(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let m = &mut s.memory;
    m.usage = num(&read_file(dir, "memory.usage_in_bytes")?);
    m.max_usage = read_num(dir, "memory.max_usage_in_bytes").unwrap_or(0);
    m.limit = read_num(dir, "memory.limit_in_bytes").unwrap_or(0);
    m.swap_usage = read_num(dir, "memory.memsw.usage_in_bytes").unwrap_or(0);
    m.swap_limit = read_num(dir, "memory.memsw.limit_in_bytes").unwrap_or(0);
    m.raw = flat_keyed(&read_file(dir, "memory.stat").unwrap_or_default());
    m.cache = m
        .raw
        .get("total_cache")
        .or(m.raw.get("cache"))
        .copied()
        .unwrap_or(0);
    Ok(())
}

pub(crate) fn pids(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    s.pids.current = num(&read_file(dir, "pids.current")?);
    s.pids.limit = match read_num(dir, "pids.max") {
        Some(u64::MAX) | None => 0,
        Some(n) => n,
    };
    Ok(())
}

fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (maj, min) = f.next()?.split_once(':')?;
            let op = f.next()?;
            let value = f.next()?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: op.to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

pub(crate) fn v1_blkio(dir: &Path, s: &mut Stats) {
    s.blkio.io_service_bytes =
        blkio_entries(&read_file(dir, "blkio.throttle.io_service_bytes").unwrap_or_default());
    s.blkio.io_serviced =
        blkio_entries(&read_file(dir, "blkio.throttle.io_serviced").unwrap_or_default());
}

fn hugetlb_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| {
                    n.strip_prefix("hugetlb.")?
                        .strip_suffix(suffix)
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort();
    sizes
}

pub(crate) fn v1_hugetlb(dir: &Path, s: &mut Stats) {
    for size in hugetlb_sizes(dir, ".usage_in_bytes") {
        let f = |k: &str| read_num(dir, &format!("hugetlb.{size}.{k}")).unwrap_or(0);
        s.hugetlb.insert(
            size.clone(),
            HugetlbStats {
                usage: f("usage_in_bytes"),
                max_usage: f("max_usage_in_bytes"),
                failcnt: f("failcnt"),
            },
        );
    }
}

pub(crate) fn v2_cpu(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let k = flat_keyed(&read_file(dir, "cpu.stat")?);
    let g = |n: &str| k.get(n).copied().unwrap_or(0);
    s.cpu.usage_total = g("usage_usec") * 1000;
    s.cpu.usage_user = g("user_usec") * 1000;
    s.cpu.usage_kernel = g("system_usec") * 1000;
    s.cpu.throttling_periods = g("nr_periods");
    s.cpu.throttled_periods = g("nr_throttled");
    s.cpu.throttled_time = g("throttled_usec") * 1000;
    Ok(())
}

pub(crate) fn v2_memory(dir: &Path, s: &mut Stats) {
    let m = &mut s.memory;
    m.usage = read_num(dir, "memory.current").unwrap_or(0);
    m.max_usage = read_num(dir, "memory.peak").unwrap_or(0);
    m.limit = read_num(dir, "memory.max").unwrap_or(u64::MAX);
    m.swap_usage = read_num(dir, "memory.swap.current").unwrap_or(0);
    m.swap_limit = read_num(dir, "memory.swap.max").unwrap_or(u64::MAX);
    m.raw = flat_keyed(&read_file(dir, "memory.stat").unwrap_or_default());
    m.cache = m.raw.get("file").copied().unwrap_or(0);
}

pub(crate) fn v2_io(dir: &Path, s: &mut Stats) {
    for line in read_file(dir, "io.stat").unwrap_or_default().lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes, "Write"),
                "rios" => (&mut s.blkio.io_serviced, "Read"),
                "wios" => (&mut s.blkio.io_serviced, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value: num(v),
            });
        }
    }
}

pub(crate) fn v2_hugetlb(dir: &Path, s: &mut Stats) {
    for size in hugetlb_sizes(dir, ".current") {
        let f = |k: &str| read_num(dir, &format!("hugetlb.{size}.{k}")).unwrap_or(0);
        let failcnt = read_file(dir, &format!("hugetlb.{size}.events"))
            .map(|t| flat_keyed(&t).get("max").copied().unwrap_or(0))
            .unwrap_or(0);
        s.hugetlb.insert(
            size.clone(),
            HugetlbStats {
                usage: f("current"),
                max_usage: 0,
                failcnt,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_files_parse() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        let put = |f: &str, v: &str| std::fs::write(d.join(f), v).expect("write");
        put("cpuacct.usage", "5000\n");
        put("cpuacct.usage_percpu", "3000 2000 \n");
        put("cpuacct.stat", "user 2\nsystem 1\n");
        put("memory.usage_in_bytes", "4096\n");
        put("memory.limit_in_bytes", "9223372036854771712\n");
        put("memory.stat", "cache 100\ntotal_cache 200\nrss 5\n");
        put("pids.current", "3\n");
        put("pids.max", "max\n");
        put(
            "blkio.throttle.io_service_bytes",
            "8:0 Read 10\n8:0 Write 20\nTotal 30\n",
        );
        put("hugetlb.2MB.usage_in_bytes", "0\n");
        let mut s = Stats::default();
        v1_cpu(d, &mut s).expect("cpu");
        v1_memory(d, &mut s).expect("mem");
        pids(d, &mut s).expect("pids");
        v1_blkio(d, &mut s);
        v1_hugetlb(d, &mut s);
        assert_eq!(s.cpu.usage_total, 5000);
        assert_eq!(s.cpu.per_cpu, vec![3000, 2000]);
        assert_eq!(s.cpu.usage_user, 20_000_000);
        assert_eq!(s.memory.usage, 4096);
        assert_eq!(s.memory.cache, 200);
        assert_eq!(
            s.pids,
            PidsStats {
                current: 3,
                limit: 0
            }
        );
        assert_eq!(s.blkio.io_service_bytes.len(), 2);
        assert!(s.hugetlb.contains_key("2MB"));
    }
}
