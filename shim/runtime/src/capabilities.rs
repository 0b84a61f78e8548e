//! The five capability sets of a process: planned from the spec in the parent (pure,
//! unit-tested) and applied in the child right before exec.

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// Bit masks (bit n = capability n) of each set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapPlan {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Highest capability the running kernel knows.
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn mask(set: &Option<Capabilities>, last: u8) -> Result<u64> {
    let mut m = 0u64;
    for c in set.iter().flatten() {
        let name = c.to_string();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        let cap: caps::Capability = name
            .parse()
            .map_err(|_| Error::InvalidSpec(format!("unknown capability {name}")))?;
        let i = cap.index();
        if i > last {
            tracing::warn!(capability = %name, "capability unknown to this kernel, ignored");
            continue;
        }
        m |= 1 << i;
    }
    Ok(m)
}

/// The plan for `caps`; `None` when the spec leaves capabilities alone.
pub fn plan(caps: Option<&LinuxCapabilities>, last: u8) -> Result<Option<CapPlan>> {
    let Some(c) = caps else {
        return Ok(None);
    };
    Ok(Some(CapPlan {
        bounding: mask(c.bounding(), last)?,
        effective: mask(c.effective(), last)?,
        permitted: mask(c.permitted(), last)?,
        inheritable: mask(c.inheritable(), last)?,
        ambient: mask(c.ambient(), last)?,
    }))
}

/// Drops every capability outside the bounding set (needs CAP_SETPCAP: call before
/// changing uid).
pub(crate) fn drop_bounding(p: &CapPlan, last: u8) -> std::result::Result<(), nix::Error> {
    for i in 0..=last {
        if p.bounding & (1 << i) == 0 {
            // SAFETY: plain prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, i as libc::c_ulong, 0, 0, 0) };
            if r != 0 {
                let e = nix::Error::last();
                // EINVAL: the kernel does not know it; nothing to drop.
                if e != nix::Error::EINVAL {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable at once, then the ambient set.
pub(crate) fn apply_sets(p: &CapPlan) -> std::result::Result<(), nix::Error> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let lo = |m: u64| m as u32;
    let hi = |m: u64| (m >> 32) as u32;
    let data = [
        Data {
            effective: lo(p.effective),
            permitted: lo(p.permitted),
            inheritable: lo(p.inheritable),
        },
        Data {
            effective: hi(p.effective),
            permitted: hi(p.permitted),
            inheritable: hi(p.inheritable),
        },
    ];
    // SAFETY: header and the two data words are valid for the duration of the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) };
    if r != 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: plain prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    for i in 0..64u64 {
        if p.ambient & (1 << i) != 0 {
            // Like runc: a cap missing from permitted or inheritable is not raised.
            // SAFETY: plain prctl with integer arguments.
            unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    i as libc::c_ulong,
                    0,
                    0,
                )
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_masks() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"],
                "permitted":["CAP_CHOWN","CAP_KILL"],"ambient":["CAP_KILL"]}"#,
        )
        .expect("json");
        let p = plan(Some(&c), 40).expect("plan").expect("some");
        assert_eq!(p.bounding, (1 << 0) | (1 << 5));
        assert_eq!(p.effective, 1 << 5);
        assert_eq!(p.inheritable, 0);
        assert_eq!(p.ambient, 1 << 5);
        assert_eq!(plan(None, 40).expect("plan"), None);
    }

    #[test]
    fn caps_beyond_kernel_are_skipped() {
        let c: LinuxCapabilities =
            serde_json::from_str(r#"{"bounding":["CAP_CHECKPOINT_RESTORE","CAP_CHOWN"]}"#)
                .expect("json");
        let p = plan(Some(&c), 39).expect("plan").expect("some");
        assert_eq!(p.bounding, 1);
    }

    #[test]
    fn bad_name_is_a_config_error() {
        let r: std::result::Result<LinuxCapabilities, _> =
            serde_json::from_str(r#"{"bounding":["CAP_NOPE"]}"#);
        assert!(r.is_err());
    }
}
