//! cgroup v2 device rules. On v2 device access is controlled by an eBPF program, which
//! this runtime does not build yet: any rule that is not "allow everything" is refused,
//! so a spec never runs with less device isolation than it asked for.

use oci_spec::runtime::LinuxDeviceCgroup;

use super::CgroupError;

/// Accepts only rule lists that allow every device; refuses the rest.
pub(crate) fn check(rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let allows_all = |r: &LinuxDeviceCgroup| {
        r.allow()
            && r.major().is_none()
            && r.minor().is_none()
            && r.typ()
                .is_none_or(|t| t == oci_spec::runtime::LinuxDeviceType::A)
    };
    if rules.is_empty() || rules.last().is_some_and(allows_all) {
        return Ok(());
    }
    Err(CgroupError::Unsupported(
        "device rules on cgroup v2 need an eBPF device program, which is not built".into(),
    ))
}
