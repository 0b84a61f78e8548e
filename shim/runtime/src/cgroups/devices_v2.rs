//! cgroup v2 device rules: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! generated from the OCI rules and attached to the container's cgroup.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (type in the low 16 bits of `access_type`, access in the high 16) and returns 1
//! (allow) or 0 (deny). OCI rules are ordered, later ones win: the program checks them
//! last to first and returns on the first match; a rule matching every device with
//! "rwm" resets the default and drops the rules before it.
//!
//! Programs are attached with BPF_F_ALLOW_MULTI: an `update` with new device rules adds
//! a program and all attached programs must allow an access, so an update can narrow
//! device access but not widen it (detaching the old program is not built).

use std::os::fd::AsRawFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const LDXW: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

fn access_bits(a: &str) -> Result<i32, CgroupError> {
    let mut bits = 0;
    for c in a.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(CgroupError::Invalid(format!(
                    "device access {a:?} has {c:?}"
                )));
            }
        };
    }
    Ok(bits)
}

fn is_wildcard(r: &LinuxDeviceCgroup) -> bool {
    matches!(r.typ(), None | Some(LinuxDeviceType::A)) && r.major().is_none() && r.minor().is_none()
}

/// The device program for `rules` (default: deny).
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, CgroupError> {
    let mut default_allow = false;
    let mut active: Vec<&LinuxDeviceCgroup> = Vec::new();
    for r in rules {
        let access = access_bits(r.access().as_deref().unwrap_or("rwm"))?;
        if is_wildcard(r) && access == ACC_READ | ACC_WRITE | ACC_MKNOD {
            default_allow = r.allow();
            active.clear();
        } else {
            active.push(r);
        }
    }
    let mut prog = vec![
        ins(LDXW, 2, 1, 0, 0),
        ins(AND32_K, 2, 0, 0, 0xffff),
        ins(LDXW, 3, 1, 0, 0),
        ins(RSH32_K, 3, 0, 0, 16),
        ins(LDXW, 4, 1, 4, 0),
        ins(LDXW, 5, 1, 8, 0),
    ];
    for r in active.iter().rev() {
        let access = access_bits(r.access().as_deref().unwrap_or("rwm"))?;
        let mut block = Vec::new();
        match r.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => {
                block.push(ins(JNE_K, 2, 0, 0, DEV_CHAR))
            }
            Some(LinuxDeviceType::B) => block.push(ins(JNE_K, 2, 0, 0, DEV_BLOCK)),
            Some(LinuxDeviceType::P) => continue, // fifos are not device-checked
            Some(LinuxDeviceType::A) | None => {}
        }
        if access != ACC_READ | ACC_WRITE | ACC_MKNOD {
            // The requested access must be a subset of the rule's.
            block.push(ins(MOV64_X, 1, 3, 0, 0));
            block.push(ins(AND32_K, 1, 0, 0, !access));
            block.push(ins(JNE_K, 1, 0, 0, 0));
        }
        if let Some(m) = r.major() {
            block.push(ins(JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor() {
            block.push(ins(JNE_K, 5, 0, 0, m as i32));
        }
        block.push(ins(MOV64_K, 0, 0, 0, r.allow() as i32));
        block.push(ins(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, b) in block.iter_mut().enumerate() {
            if b.code == JNE_K {
                b.off = (len - 1 - i) as i16;
            }
        }
        prog.extend(block);
    }
    prog.push(ins(MOV64_K, 0, 0, 0, default_allow as i32));
    prog.push(ins(EXIT, 0, 0, 0, 0));
    Ok(prog)
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> Result<i32, CgroupError> {
    // SAFETY: attr is a zeroed, large enough bpf_attr for the command.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of::<[u64; 16]>(),
        )
    };
    if r < 0 {
        return Err(CgroupError::io(
            "bpf",
            "cgroup device program",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(r as i32)
}

/// Loads `prog` and attaches it to the cgroup directory `dir` (BPF_F_ALLOW_MULTI).
pub fn attach(prog: &[Insn], dir: &Path) -> Result<(), CgroupError> {
    let license = c"Apache-2.0";
    let mut attr = [0u64; 16];
    // union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, ...
    attr[0] = 15 | ((prog.len() as u64) << 32); // BPF_PROG_TYPE_CGROUP_DEVICE
    attr[1] = prog.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    let pfd = bpf(5, &mut attr)?; // BPF_PROG_LOAD
    // SAFETY: the kernel returned a new program fd we own.
    let pfd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pfd) };
    let cg = std::fs::File::open(dir).map_err(|e| CgroupError::io("opening", dir, e))?;
    let mut attr = [0u64; 16];
    // target_fd, attach_bpf_fd, attach_type, attach_flags
    attr[0] = cg.as_raw_fd() as u64 | ((pfd.as_raw_fd() as u64) << 32);
    attr[1] = 6 | (2 << 32); // BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI
    bpf(8, &mut attr)?; // BPF_PROG_ATTACH
    Ok(())
}

/// Runs the program on one access (an interpreter for the instructions generated
/// above), for tests and for `plan` checks.
pub fn evaluate(prog: &[Insn], typ: i32, access: i32, major: u32, minor: u32) -> bool {
    let ctx = [(access << 16 | typ) as u32, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    while pc < prog.len() {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        match i.code {
            LDXW => r[dst] = ctx[(i.off / 4) as usize] as u64,
            AND32_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
            RSH32_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
            MOV64_X => r[dst] = r[src],
            MOV64_K => r[dst] = i.imm as i64 as u64,
            JNE_K => {
                if r[dst] != i.imm as i64 as u64 {
                    pc += i.off as usize;
                }
            }
            EXIT => return r[0] == 1,
            _ => return false,
        }
        pc += 1;
    }
    false
}

/// [`super::plan::DEFAULT_DEVICE_RULES`] as OCI rules.
pub fn default_rules() -> Vec<LinuxDeviceCgroup> {
    super::plan::DEFAULT_DEVICE_RULES
        .iter()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let typ = match f.next()? {
                "c" => "c",
                "b" => "b",
                _ => "a",
            };
            let (maj, min) = f.next()?.split_once(':')?;
            let access = f.next()?;
            let num = |s: &str| {
                if s == "*" {
                    "null".to_string()
                } else {
                    s.to_string()
                }
            };
            serde_json::from_str(&format!(
                r#"{{"allow":true,"type":"{typ}","major":{},"minor":{},"access":"{access}"}}"#,
                num(maj),
                num(min)
            ))
            .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).expect("rules json")
    }

    #[test]
    fn deny_all_then_allow_some() {
        let p = program(&rules(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                {"allow":true,"type":"c","major":136,"access":"rw"},
                {"allow":true,"type":"b","major":8,"minor":0,"access":"r"}]"#,
        ))
        .expect("program");
        assert!(evaluate(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), "null");
        assert!(evaluate(&p, DEV_CHAR, ACC_MKNOD, 1, 3));
        assert!(!evaluate(&p, DEV_CHAR, ACC_READ, 1, 5), "zero is denied");
        assert!(evaluate(&p, DEV_CHAR, ACC_WRITE, 136, 7), "any pty minor");
        assert!(
            !evaluate(&p, DEV_CHAR, ACC_MKNOD, 136, 7),
            "no mknod of ptys"
        );
        assert!(evaluate(&p, DEV_BLOCK, ACC_READ, 8, 0));
        assert!(!evaluate(&p, DEV_BLOCK, ACC_WRITE, 8, 0), "read only");
        assert!(!evaluate(&p, DEV_CHAR, ACC_READ, 8, 0), "type matters");
    }

    #[test]
    fn later_rules_win_and_wildcards_reset() {
        let p = program(&rules(
            r#"[{"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
                {"allow":true,"access":"rwm"},
                {"allow":false,"type":"c","major":1,"minor":5,"access":"w"}]"#,
        ))
        .expect("program");
        assert!(
            evaluate(&p, DEV_BLOCK, ACC_WRITE, 9, 9),
            "default allow after wildcard"
        );
        assert!(evaluate(&p, DEV_CHAR, ACC_READ, 1, 5));
        assert!(
            !evaluate(&p, DEV_CHAR, ACC_WRITE, 1, 5),
            "the later deny wins"
        );
        assert!(program(&rules(r#"[{"allow":true,"access":"rwx"}]"#)).is_err());
    }
}

#[cfg(test)]
mod default_tests {
    use super::*;

    #[test]
    fn defaults_allow_the_standard_nodes_only() {
        let mut r: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow":false,"access":"rwm"}]"#).expect("json");
        r.extend(default_rules());
        assert_eq!(
            default_rules().len(),
            super::super::plan::DEFAULT_DEVICE_RULES.len()
        );
        let p = program(&r).expect("program");
        assert!(
            evaluate(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 9),
            "urandom"
        );
        assert!(
            evaluate(&p, DEV_BLOCK, ACC_MKNOD, 8, 0),
            "mknod of anything"
        );
        assert!(
            !evaluate(&p, DEV_BLOCK, ACC_READ, 8, 0),
            "but no block access"
        );
    }
}
