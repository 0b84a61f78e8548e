//! What a spec's `linux.resources` turns into: an ordered list of cgroup file writes for
//! v1 and for v2. Pure functions, so the plan is unit-tested without root.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::CgroupError;

/// One write: `value` into `<hierarchy of controller>/<cgroup>/<file>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// v1 controller name (hierarchy); "" on v2.
    pub controller: &'static str,
    pub file: String,
    pub value: String,
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
    }
}

/// Devices every container may use (besides its spec's rules): mknod of anything, and
/// null, zero, full, random, urandom, tty, console, ptmx and the pty slaves.
pub const DEFAULT_DEVICE_RULES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// The `devices.allow`/`deny` line of one rule.
pub fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let typ = match d.typ() {
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "c",
        Some(LinuxDeviceType::B) => "b",
        Some(LinuxDeviceType::P) => "p",
        Some(LinuxDeviceType::A) | None => "a",
    };
    let num = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if typ == "a" && d.major().is_none() && d.minor().is_none() {
        return format!("a *:* {access}");
    }
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

fn check_nonneg(name: &str, v: i64) -> Result<(), CgroupError> {
    if v < -1 {
        return Err(CgroupError::Invalid(format!("{name} {v} is negative")));
    }
    Ok(())
}

/// The v1 writes for `res`, in the order they must happen.
pub fn v1(res: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let mut out = Vec::new();
    if let Some(devs) = res.devices() {
        out.push(w("devices", "devices.deny", "a"));
        for d in devs {
            let file = if d.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            out.push(w("devices", file, device_rule(d)));
        }
        for r in DEFAULT_DEVICE_RULES {
            out.push(w("devices", "devices.allow", r));
        }
    }
    if let Some(cpu) = res.cpu() {
        if let Some(s) = cpu.shares() {
            if s < 2 {
                return Err(CgroupError::Invalid(format!("cpu shares {s} is below 2")));
            }
            out.push(w("cpu", "cpu.shares", s));
        }
        if let Some(p) = cpu.period() {
            out.push(w("cpu", "cpu.cfs_period_us", p));
        }
        if let Some(q) = cpu.quota() {
            out.push(w("cpu", "cpu.cfs_quota_us", q));
        }
        if let Some(b) = cpu.burst() {
            out.push(w("cpu", "cpu.cfs_burst_us", b));
        }
        if let Some(p) = cpu.realtime_period() {
            out.push(w("cpu", "cpu.rt_period_us", p));
        }
        if let Some(r) = cpu.realtime_runtime() {
            out.push(w("cpu", "cpu.rt_runtime_us", r));
        }
        if let Some(i) = cpu.idle() {
            out.push(w("cpu", "cpu.idle", i));
        }
        if let Some(c) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", c));
        }
        if let Some(m) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", m));
        }
    }
    if let Some(mem) = res.memory() {
        if let Some(l) = mem.limit() {
            check_nonneg("memory limit", l)?;
            out.push(w("memory", "memory.limit_in_bytes", l));
        }
        if let Some(s) = mem.swap() {
            check_nonneg("memory swap", s)?;
            if let Some(l) = mem.limit()
                && s != -1
                && l != -1
                && s < l
            {
                return Err(CgroupError::Invalid(format!(
                    "memory+swap {s} is below the memory limit {l}"
                )));
            }
            out.push(w("memory", "memory.memsw.limit_in_bytes", s));
        }
        if let Some(r) = mem.reservation() {
            out.push(w("memory", "memory.soft_limit_in_bytes", r));
        }
        if let Some(s) = mem.swappiness() {
            if s > 100 {
                return Err(CgroupError::Invalid(format!("swappiness {s} is above 100")));
            }
            out.push(w("memory", "memory.swappiness", s));
        }
        if mem.disable_oom_killer() == Some(true) {
            out.push(w("memory", "memory.oom_control", 1));
        }
    }
    if let Some(p) = res.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        out.push(w("pids", "pids.max", v));
    }
    if let Some(b) = res.block_io() {
        if let Some(x) = b.weight() {
            out.push(w("blkio", "blkio.weight", x));
        }
        if let Some(x) = b.leaf_weight() {
            out.push(w("blkio", "blkio.leaf_weight", x));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(x) = d.weight() {
                out.push(w(
                    "blkio",
                    "blkio.weight_device",
                    format!("{}:{} {x}", d.major(), d.minor()),
                ));
            }
            if let Some(x) = d.leaf_weight() {
                out.push(w(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{}:{} {x}", d.major(), d.minor()),
                ));
            }
        }
        let throttles = [
            (
                "blkio.throttle.read_bps_device",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                b.throttle_write_iops_device(),
            ),
        ];
        for (file, list) in throttles {
            for d in list.iter().flatten() {
                out.push(w(
                    "blkio",
                    file,
                    format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                ));
            }
        }
    }
    for h in res.hugepage_limits().iter().flatten() {
        out.push(w(
            "hugetlb",
            format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            h.limit(),
        ));
    }
    if let Some(n) = res.network() {
        if let Some(c) = n.class_id() {
            out.push(w("net_cls", "net_cls.classid", c));
        }
        for p in n.priorities().iter().flatten() {
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
    }
    if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported(
            "linux.resources.unified needs cgroup v2".into(),
        ));
    }
    Ok(out)
}

/// cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000), as runc and crun convert.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// The v2 writes for `res`. Device rules are not files on v2: see `devices_v2`.
pub fn v2(res: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let mut out = Vec::new();
    if let Some(cpu) = res.cpu() {
        if let Some(s) = cpu.shares() {
            out.push(w("", "cpu.weight", shares_to_weight(s)));
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            let q = match cpu.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            out.push(w(
                "",
                "cpu.max",
                format!("{q} {}", cpu.period().unwrap_or(100_000)),
            ));
        }
        if let Some(b) = cpu.burst() {
            out.push(w("", "cpu.max.burst", b));
        }
        if let Some(i) = cpu.idle() {
            out.push(w("", "cpu.idle", i));
        }
        if cpu.realtime_period().is_some() || cpu.realtime_runtime().is_some() {
            return Err(CgroupError::Unsupported(
                "realtime cpu limits need cgroup v1".into(),
            ));
        }
        if let Some(c) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            out.push(w("", "cpuset.cpus", c));
        }
        if let Some(m) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            out.push(w("", "cpuset.mems", m));
        }
    }
    if let Some(mem) = res.memory() {
        let max = |v: i64| {
            if v < 0 {
                "max".to_string()
            } else {
                v.to_string()
            }
        };
        if let Some(l) = mem.limit() {
            check_nonneg("memory limit", l)?;
            out.push(w("", "memory.max", max(l)));
        }
        if let Some(s) = mem.swap() {
            check_nonneg("memory swap", s)?;
            let swap = match mem.limit() {
                _ if s == -1 => "max".to_string(),
                Some(l) if l > 0 => {
                    if s < l {
                        return Err(CgroupError::Invalid(format!(
                            "memory+swap {s} is below the memory limit {l}"
                        )));
                    }
                    (s - l).to_string()
                }
                _ => s.to_string(),
            };
            out.push(w("", "memory.swap.max", swap));
        }
        if let Some(r) = mem.reservation() {
            out.push(w("", "memory.low", max(r)));
        }
        if mem.disable_oom_killer() == Some(true) {
            return Err(CgroupError::Unsupported(
                "disableOOMKiller needs cgroup v1".into(),
            ));
        }
    }
    if let Some(p) = res.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        out.push(w("", "pids.max", v));
    }
    if let Some(b) = res.block_io() {
        if let Some(x) = b.weight() {
            out.push(w("", "io.bfq.weight", x));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(x) = d.weight() {
                out.push(w(
                    "",
                    "io.bfq.weight",
                    format!("{}:{} {x}", d.major(), d.minor()),
                ));
            }
        }
        let throttles = [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ];
        for (key, list) in throttles {
            for d in list.iter().flatten() {
                out.push(w(
                    "",
                    "io.max",
                    format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                ));
            }
        }
    }
    for h in res.hugepage_limits().iter().flatten() {
        out.push(w("", format!("hugetlb.{}.max", h.page_size()), h.limit()));
    }
    if res
        .network()
        .as_ref()
        .is_some_and(|n| n.class_id().is_some() || n.priorities().is_some())
    {
        return Err(CgroupError::Unsupported(
            "net_cls/net_prio need cgroup v1".into(),
        ));
    }
    if let Some(u) = res.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            if k.contains('/') {
                return Err(CgroupError::Invalid(format!("unified key {k:?} has a '/'")));
            }
            out.push(Write {
                controller: "",
                file: k.clone(),
                value: v.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).expect("resources json")
    }

    fn files(ws: &[Write]) -> Vec<(String, String)> {
        ws.iter()
            .map(|w| (w.file.clone(), w.value.clone()))
            .collect()
    }

    #[test]
    fn v1_cpu_memory_pids() {
        let r = res(
            r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0"},
            "memory":{"limit":104857600,"swap":209715200,"swappiness":10,"disableOOMKiller":true},
            "pids":{"limit":32}}"#,
        );
        let f = files(&v1(&r).expect("plan"));
        for want in [
            ("cpu.shares", "512"),
            ("cpu.cfs_quota_us", "50000"),
            ("cpu.cfs_period_us", "100000"),
            ("cpuset.cpus", "0"),
            ("memory.limit_in_bytes", "104857600"),
            ("memory.memsw.limit_in_bytes", "209715200"),
            ("memory.swappiness", "10"),
            ("memory.oom_control", "1"),
            ("pids.max", "32"),
        ] {
            assert!(
                f.contains(&(want.0.into(), want.1.into())),
                "{want:?} missing in {f:?}"
            );
        }
        let period = f.iter().position(|x| x.0 == "cpu.cfs_period_us");
        let quota = f.iter().position(|x| x.0 == "cpu.cfs_quota_us");
        assert!(period < quota, "period is written before quota");
    }

    #[test]
    fn v1_devices_keep_spec_order_after_deny_all() {
        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"},
            {"allow":true,"type":"b","major":8,"minor":20,"access":"rw"}]}"#);
        let f = files(&v1(&r).expect("plan"));
        assert_eq!(f[0], ("devices.deny".into(), "a".into()));
        assert_eq!(f[1], ("devices.deny".into(), "a *:* rwm".into()));
        assert_eq!(f[2], ("devices.allow".into(), "c 10:229 rwm".into()));
        assert_eq!(f[3], ("devices.allow".into(), "b 8:20 rw".into()));
        assert!(f.contains(&("devices.allow".into(), "c 1:3 rwm".into())));
    }

    #[test]
    fn impossible_values_are_refused() {
        assert!(v1(&res(r#"{"memory":{"limit":-5}}"#)).is_err());
        assert!(v1(&res(r#"{"memory":{"limit":200,"swap":100}}"#)).is_err());
        assert!(v1(&res(r#"{"cpu":{"shares":1}}"#)).is_err());
        assert!(v1(&res(r#"{"memory":{"swappiness":101}}"#)).is_err());
        assert!(v1(&res(r#"{"unified":{"memory.high":"1"}}"#)).is_err());
        assert!(v2(&res(r#"{"memory":{"disableOOMKiller":true}}"#)).is_err());
    }

    #[test]
    fn v2_conversions() {
        let r = res(r#"{"cpu":{"shares":1024,"quota":20000,"period":100000},
            "memory":{"limit":1000,"swap":3000,"reservation":500},"pids":{"limit":-1},
            "unified":{"memory.high":"900"}}"#);
        let f = files(&v2(&r).expect("plan"));
        for want in [
            ("cpu.weight", "39"),
            ("cpu.max", "20000 100000"),
            ("memory.max", "1000"),
            ("memory.swap.max", "2000"),
            ("memory.low", "500"),
            ("pids.max", "max"),
            ("memory.high", "900"),
        ] {
            assert!(
                f.contains(&(want.0.into(), want.1.into())),
                "{want:?} missing in {f:?}"
            );
        }
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
