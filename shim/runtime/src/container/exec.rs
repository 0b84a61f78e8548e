//! `exec`: a new process in a running container's namespaces and cgroup.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::unistd::{ForkResult, fork};
use oci_spec::runtime::LinuxNamespaceType;

use super::{ExecOptions, load};
use crate::error::{Error, Result};
use crate::namespaces::proc_name;
use crate::process::exec::{ExecCtx, intermediate};
use crate::state::{self, RuntimeRoot, Status};
use crate::sync::{self, ChildError, tag};

/// Runs `opts.process` in container `id`; returns its host pid once it has exec'd.
pub fn exec(root: &RuntimeRoot, id: &str, opts: &ExecOptions) -> Result<i32> {
    let l = load(root, id)?;
    if !matches!(l.status, Status::Running | Status::Created) {
        return Err(Error::WrongState {
            id: id.to_owned(),
            status: l.status.to_string(),
            op: "exec",
        });
    }
    let linux = l.rec.config.linux().clone().unwrap_or_default();
    let pplan = crate::process::plan(&opts.process, linux.seccomp().as_ref())?;
    if pplan.terminal && opts.console_socket.is_none() {
        return Err(Error::InvalidSpec(
            "a terminal needs --console-socket".into(),
        ));
    }
    // Join every namespace of the init that differs from ours, user first.
    let mut types: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect();
    types.sort_by_key(|t| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    let mut files = Vec::new();
    for t in types {
        let theirs = PathBuf::from(format!("/proc/{}/ns/{}", l.rec.pid, proc_name(t)));
        let ours = PathBuf::from(format!("/proc/self/ns/{}", proc_name(t)));
        let f =
            std::fs::File::open(&theirs).map_err(|e| Error::io("opening namespace", &theirs, e))?;
        let same =
            std::fs::metadata(&ours).is_ok_and(|m| f.metadata().is_ok_and(|n| n.ino() == m.ino()));
        if !same {
            files.push((t, f));
        }
    }
    let console = opts
        .console_socket
        .as_deref()
        .map(crate::tty::connect_console)
        .transpose()?;
    let (parent_chan, child_chan) = sync::pair()?;
    let ctx = ExecCtx {
        cgroup_join: l.cgroup.self_join_files(),
        ns_fds: files.iter().map(|(t, f)| (*t, f.as_raw_fd())).collect(),
        process: pplan,
        console: console.as_ref().map(|c| c.as_raw_fd()),
        preserve_fds: opts.preserve_fds,
    };
    // SAFETY: the runtime is single-threaded; the child only runs `intermediate`.
    let child = match unsafe { fork() }.map_err(|e| Error::sys("fork", e))? {
        ForkResult::Child => {
            drop(parent_chan);
            intermediate(&ctx, &child_chan)
        }
        ForkResult::Parent { child } => child,
    };
    drop(child_chan);
    drop(console);
    drop(files);
    let fail = |e: ChildError| e.into_error(id);
    let kill_child = || {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
    };
    let pid = match parent_chan
        .send(tag::GO, &[])
        .map_err(|e| ChildError::from(e.to_string()))
        .and_then(|_| parent_chan.expect(tag::PID))
    {
        Ok(raw) => i32::from_le_bytes(
            raw.get(..4)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 4]),
        ),
        Err(m) => {
            kill_child();
            return Err(fail(m));
        }
    };
    let _ = nix::sys::wait::waitpid(child, None);
    match parent_chan.recv() {
        Ok(None) => {}
        Ok(Some((t, p))) => {
            let Some(e) = ChildError::decode(t, &p) else {
                return Err(fail(
                    format!("unexpected sync message {:?}", t as char).into(),
                ));
            };
            super::reap_if_child(pid);
            return Err(fail(e));
        }
        Err(e) => return Err(Error::sys("sync", e)),
    }
    if let Some(pf) = &opts.pid_file {
        state::write_atomic(pf, pid.to_string().as_bytes())?;
    }
    tracing::info!(id, pid, "exec'd");
    Ok(pid)
}
