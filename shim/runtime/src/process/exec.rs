//! The child side of `exec`: an intermediate joins the container's cgroup (writing `0`
//! to [`ExecCtx::cgroup_join`], see [`crate::cgroups::CgroupManager::self_join_files`])
//! and namespaces and forks the process, which is
//! then inside the container's pid namespace. Both are non-dumpable until exec, so no
//! container process can open `/proc/<pid>/exe` (the runtime binary) meanwhile.

use std::os::fd::RawFd;

use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, fork};
use oci_spec::runtime::LinuxNamespaceType;

use crate::process::create::enter_namespaces;
use crate::process::{self, ProcessPlan};
use crate::sync::{Chan, ChildError, tag};

/// What the exec children need.
#[derive(Debug)]
pub struct ExecCtx {
    /// Files the intermediate writes `0` to, to join the container's cgroup.
    pub cgroup_join: Vec<std::path::PathBuf>,
    pub ns_fds: Vec<(LinuxNamespaceType, RawFd)>,
    pub process: ProcessPlan,
    pub console: Option<RawFd>,
    pub preserve_fds: i32,
}

type R = std::result::Result<(), ChildError>;

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// The exec intermediate. Never returns.
pub fn intermediate(ctx: &ExecCtx, chan: &Chan) -> ! {
    let r = (|| -> R {
        chan.expect(tag::GO)?;
        for f in &ctx.cgroup_join {
            std::fs::write(f, "0").map_err(|e| format!("joining cgroup {}: {e}", f.display()))?;
        }
        // SAFETY: plain prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        enter_namespaces(&ctx.ns_fds, false, CloneFlags::empty(), chan)?;
        // SAFETY: this process is single-threaded.
        match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
            ForkResult::Child => child(ctx, chan),
            ForkResult::Parent { child } => {
                chan.send(tag::PID, &child.as_raw().to_le_bytes())
                    .map_err(|e| format!("sync: {e}"))?;
                exit(0)
            }
        }
    })();
    if let Err(e) = r {
        let _ = chan.send_error(&e);
    }
    exit(1)
}

fn child(ctx: &ExecCtx, chan: &Chan) -> ! {
    let r = (|| -> R {
        if ctx.process.terminal {
            let sock = ctx
                .console
                .ok_or("terminal requested without a console socket")?;
            crate::tty::setup(sock, ctx.process.console_size, false)?;
            let _ = nix::unistd::close(sock);
        }
        process::set_rlimits(&ctx.process)?;
        process::enter_cwd(&ctx.process)?;
        let exe = process::resolve_exe(&ctx.process)?;
        process::seal_fds(ctx.preserve_fds)?;
        process::finalize(&ctx.process)?;
        Err(process::exec(&exe, &ctx.process).into())
    })();
    if let Err(e) = r {
        let _ = chan.send_error(&e);
    }
    exit(1)
}
