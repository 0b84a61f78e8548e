//! seccomp: the OCI profile compiled with `seccompiler` into a stack of BPF filters.
//!
//! seccompiler builds filters with a single match action, so a profile becomes:
//! - a guard filter killing the process on x32 syscall numbers (seccompiler matches
//!   numbers only, and an x32 alias must never slip past a deny rule);
//! - a default filter: any rule of the profile matches -> ALLOW, else the default action
//!   (left out when the default is ALLOW);
//! - one filter per other action (ERRNO per errno value, KILL, TRAP, TRACE, LOG, ...):
//!   a rule of that action matches -> the action, else ALLOW.
//!
//! The kernel runs every filter and takes the most restrictive result, which is the
//! profile's meaning when rules of different actions do not overlap. What cannot be
//! enforced is refused: SCMP_ACT_NOTIFY, non-native architectures as the only ones,
//! unknown syscall names in rules more restrictive than the default, unknown flags.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{BpfProgram, sock_filter};
use serde_json::{Value, json};

use crate::error::{Error, Result};

const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1;
const SECCOMP_FILTER_FLAG_LOG: u32 = 2;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 4;
const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// A compiled profile, ready to load in the container's init right before exec.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub filters: Vec<BpfProgram>,
    pub flags: u32,
}

fn action_json(a: LinuxSeccompAction, errno: Option<u32>) -> Result<Value> {
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => json!("allow"),
        LinuxSeccompAction::ScmpActErrno => json!({ "errno": errno.unwrap_or(libc::EPERM as u32) }),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            json!("kill_thread")
        }
        LinuxSeccompAction::ScmpActKillProcess => json!("kill_process"),
        LinuxSeccompAction::ScmpActTrap => json!("trap"),
        LinuxSeccompAction::ScmpActLog => json!("log"),
        LinuxSeccompAction::ScmpActTrace => json!({ "trace": errno.unwrap_or(0) }),
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::Seccomp(
                "SCMP_ACT_NOTIFY (seccomp user notification) is not supported".into(),
            ));
        }
    })
}

fn op_json(op: LinuxSeccompOperator, value: u64, two: Option<u64>) -> (Value, u64) {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => (json!("ne"), value),
        LinuxSeccompOperator::ScmpCmpLt => (json!("lt"), value),
        LinuxSeccompOperator::ScmpCmpLe => (json!("le"), value),
        LinuxSeccompOperator::ScmpCmpEq => (json!("eq"), value),
        LinuxSeccompOperator::ScmpCmpGe => (json!("ge"), value),
        LinuxSeccompOperator::ScmpCmpGt => (json!("gt"), value),
        // OCI: value is the mask, valueTwo the expected result.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (json!({ "masked_eq": value }), two.unwrap_or(0)),
    }
}

/// Restrictiveness order of the kernel (higher wins).
fn rank(a: LinuxSeccompAction) -> u8 {
    match a {
        LinuxSeccompAction::ScmpActAllow => 0,
        LinuxSeccompAction::ScmpActLog => 1,
        LinuxSeccompAction::ScmpActTrace => 2,
        LinuxSeccompAction::ScmpActNotify => 3,
        LinuxSeccompAction::ScmpActErrno => 4,
        LinuxSeccompAction::ScmpActTrap => 5,
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => 6,
        LinuxSeccompAction::ScmpActKillProcess => 7,
    }
}

/// One rule in seccompiler's JSON form: name plus an optional AND of conditions.
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    args: Option<Vec<Value>>,
}

/// Rules of one syscall entry. Conditions on the same argument index are ORed (one rule
/// each), like runc does; on distinct indexes they are ANDed.
fn entry_rules(names: &[String], args: &[oci_spec::runtime::LinuxSeccompArg]) -> Vec<Rule> {
    let conds: Vec<(usize, Value)> = args
        .iter()
        .map(|a| {
            let (op, val) = op_json(a.op(), a.value(), a.value_two());
            (
                a.index(),
                json!({"index": a.index(), "type": "qword", "op": op, "val": val}),
            )
        })
        .collect();
    let same_index = conds.len() > 1 && conds.iter().all(|c| c.0 == conds[0].0);
    let mut out = Vec::new();
    for n in names {
        if conds.is_empty() {
            out.push(Rule {
                name: n.clone(),
                args: None,
            });
        } else if same_index {
            for c in &conds {
                out.push(Rule {
                    name: n.clone(),
                    args: Some(vec![c.1.clone()]),
                });
            }
        } else {
            out.push(Rule {
                name: n.clone(),
                args: Some(conds.iter().map(|c| c.1.clone()).collect()),
            });
        }
    }
    out
}

fn filter_json(rules: &[Rule], mismatch: Value, matched: Value) -> Value {
    // A syscall with an unconditional rule matches always: drop its conditional ones.
    let uncond: std::collections::HashSet<&str> = rules
        .iter()
        .filter(|r| r.args.is_none())
        .map(|r| r.name.as_str())
        .collect();
    let list: Vec<Value> = rules
        .iter()
        .filter(|r| r.args.is_none() || !uncond.contains(r.name.as_str()))
        .map(|r| match &r.args {
            Some(a) => json!({"syscall": r.name, "args": a}),
            None => json!({"syscall": r.name}),
        })
        .collect();
    json!({"mismatch_action": mismatch, "match_action": matched, "filter": list})
}

/// Compiles `profile` for this machine's architecture.
pub fn compile(profile: &LinuxSeccomp) -> Result<Compiled> {
    if profile.listener_path().is_some() {
        return Err(Error::Seccomp(
            "listenerPath (user notification) is not supported".into(),
        ));
    }
    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        };
    }
    if let Some(archs) = profile.architectures()
        && !archs.is_empty()
        && !archs
            .iter()
            .any(|a| matches!(a, Arch::ScmpArchX86_64 | Arch::ScmpArchNative))
    {
        return Err(Error::Seccomp(format!(
            "architectures {archs:?} do not include this machine's (x86_64)"
        )));
    }
    let default = profile.default_action();
    let default_json = action_json(default, profile.default_errno_ret())?;

    // Group rules per distinct action (errno values and trace data distinguish).
    let mut groups: BTreeMap<String, (LinuxSeccompAction, Value, Vec<Rule>)> = BTreeMap::new();
    let mut all = Vec::new();
    for sc in profile.syscalls().iter().flatten() {
        let aj = action_json(sc.action(), sc.errno_ret())?;
        let rules = entry_rules(sc.names(), sc.args().as_deref().unwrap_or(&[]));
        // A rule with the default's own action just falls through to the default: it
        // must not be let through by the default filter.
        if aj == default_json {
            continue;
        }
        all.extend(rules.iter().cloned());
        if sc.action() != LinuxSeccompAction::ScmpActAllow {
            groups
                .entry(aj.to_string())
                .or_insert_with(|| (sc.action(), aj.clone(), Vec::new()))
                .2
                .extend(rules);
        }
    }

    let mut doc = serde_json::Map::new();
    if default != LinuxSeccompAction::ScmpActAllow && !all.is_empty() {
        doc.insert(
            "0default".into(),
            filter_json(&all, default_json.clone(), json!("allow")),
        );
    }
    for (i, (_, (_, aj, rules))) in groups.iter().enumerate() {
        if *aj == default_json || rules.is_empty() {
            continue;
        }
        doc.insert(
            format!("{}g{i}", i + 1),
            filter_json(rules, json!("allow"), aj.clone()),
        );
    }

    // Resolve names: drop unknown ones where that only makes the profile stricter.
    let mut doc = Value::Object(doc);
    let map = loop {
        match seccompiler::compile_from_json(
            doc.to_string().as_bytes(),
            seccompiler::TargetArch::x86_64,
        ) {
            Ok(m) => break m,
            Err(e) => {
                let msg = e.to_string();
                let Some(name) = msg
                    .split("Invalid syscall name: ")
                    .nth(1)
                    .and_then(|r| r.split(" for given arch").next())
                    .map(str::to_owned)
                else {
                    return Err(Error::Seccomp(format!("compiling the profile: {msg}")));
                };
                remove_unknown(&mut doc, &name, profile)?;
            }
        }
    };
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    let mut filters = vec![x32_guard()];
    filters.extend(names.into_iter().map(|n| map[n].clone()));
    Ok(Compiled { filters, flags })
}

/// Removes rules naming `name` if every rule naming it is less restrictive than the
/// default action (then an unknown syscall just falls to the default); else refuses.
fn remove_unknown(doc: &mut Value, name: &str, profile: &LinuxSeccomp) -> Result<()> {
    let default = rank(profile.default_action());
    for sc in profile.syscalls().iter().flatten() {
        if sc.names().iter().any(|n| n == name) && rank(sc.action()) > default {
            return Err(Error::Seccomp(format!(
                "syscall {name:?} is unknown to the seccomp compiler and its rule ({}) is stricter than the default action",
                sc.action()
            )));
        }
    }
    tracing::warn!(
        syscall = name,
        "seccomp: unknown syscall name ignored (falls to the default action)"
    );
    if let Some(obj) = doc.as_object_mut() {
        for f in obj.values_mut() {
            if let Some(list) = f.get_mut("filter").and_then(Value::as_array_mut) {
                list.retain(|r| r.get("syscall").and_then(Value::as_str) != Some(name));
            }
        }
        obj.retain(|_, f| {
            f.get("filter")
                .and_then(Value::as_array)
                .is_some_and(|l| !l.is_empty())
        });
    }
    Ok(())
}

/// Kills the process on syscall numbers with the x32 bit set.
fn x32_guard() -> BpfProgram {
    let ins = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    vec![
        ins(0x20, 0, 0, 0),           // ld [nr]
        ins(0x35, 0, 1, 0x4000_0000), // jge #0x40000000, kill, allow
        ins(0x06, 0, 0, 0x8000_0000), // ret KILL_PROCESS
        ins(0x06, 0, 0, 0x7fff_0000), // ret ALLOW
    ]
}

/// Loads the filters into the calling thread (needs no_new_privs or CAP_SYS_ADMIN).
/// Async-signal-safe enough for the child between fork and exec: no allocation.
pub(crate) fn load(c: &Compiled) -> std::result::Result<(), nix::Error> {
    // Later filters run first; order does not change the result (most restrictive wins).
    for f in c.filters.iter().rev() {
        #[repr(C)]
        struct Fprog {
            len: libc::c_ushort,
            filter: *const sock_filter,
        }
        let prog = Fprog {
            len: f.len() as libc::c_ushort,
            filter: f.as_ptr(),
        };
        // SAFETY: prog points to a live BPF program of `len` instructions for the whole call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                1 as libc::c_ulong, // SECCOMP_SET_MODE_FILTER
                c.flags as libc::c_ulong,
                &prog as *const Fprog,
            )
        };
        if r != 0 {
            return Err(nix::Error::last());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("profile json")
    }

    #[test]
    fn errno_rule_and_default_allow_make_guard_plus_one_filter() {
        let c = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        ))
        .expect("compile");
        assert_eq!(c.filters.len(), 2);
        assert_eq!(c.filters[0], x32_guard());
        // ERRNO|1 is returned somewhere in the action filter.
        assert!(
            c.filters[1]
                .iter()
                .any(|i| i.code == 0x06 && i.k == 0x0005_0001)
        );
    }

    #[test]
    fn default_errno_allowlist_with_args() {
        let c = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "flags":["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                {"names":["kill"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
        ))
        .expect("compile");
        assert_eq!(c.flags, SECCOMP_FILTER_FLAG_LOG);
        assert_eq!(c.filters.len(), 3, "guard, default, kill_process");
    }

    #[test]
    fn rules_with_the_default_action_are_not_allowed_through() {
        let c = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        ))
        .expect("compile");
        assert_eq!(c.filters.len(), 2, "guard and default filter");
        let jeq = |nr: u32| c.filters[1].iter().any(|i| i.code == 0x15 && i.k == nr);
        assert!(jeq(0), "read (0) is matched and allowed");
        assert!(!jeq(83), "mkdir (83) falls to the default ERRNO");
    }

    #[test]
    fn refusals() {
        assert!(compile(&profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#)).is_err());
        assert!(
            compile(&profile(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_AARCH64"]}"#
            ))
            .is_err()
        );
        // An unknown name in a deny rule under a default allow would fail open.
        assert!(compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["no_such_call"],"action":"SCMP_ACT_ERRNO"}]}"#
        ))
        .is_err());
        // In an allow rule under a deny default it is only stricter: accepted.
        let c = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["no_such_call","read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        ))
        .expect("unknown allow name is dropped");
        assert_eq!(c.filters.len(), 2);
    }
}
