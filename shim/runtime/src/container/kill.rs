//! `kill`: a signal to the init, or with `all` to every process in the cgroup.

use nix::sys::signal::{Signal, kill as sys_kill};
use nix::unistd::Pid;

use super::load;
use crate::error::{Error, Result};
use crate::state::RuntimeRoot;

/// Parses runc's signal forms: `KILL`, `SIGKILL`, `9`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::InvalidSpec(format!("unknown signal {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::InvalidSpec(format!("unknown signal {s}")))
}

/// Sends `signal` to the container's init (or all its processes).
pub fn kill(root: &RuntimeRoot, id: &str, signal: Signal, all: bool) -> Result<()> {
    let l = load(root, id)?;
    if !l.status.can_kill() {
        return Err(Error::WrongState {
            id: id.to_owned(),
            status: l.status.to_string(),
            op: "kill",
        });
    }
    if all {
        let pids = l.cgroup.pids().map_err(|source| Error::Cgroup {
            id: id.to_owned(),
            source,
        })?;
        for p in pids {
            let _ = sys_kill(Pid::from_raw(p), signal);
        }
        return Ok(());
    }
    sys_kill(Pid::from_raw(l.rec.pid), signal).map_err(|e| Error::sys("kill", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_forms() {
        assert_eq!(parse_signal("KILL").expect("KILL"), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGTERM").expect("SIGTERM"), Signal::SIGTERM);
        assert_eq!(parse_signal("hup").expect("hup"), Signal::SIGHUP);
        assert_eq!(parse_signal("9").expect("9"), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
