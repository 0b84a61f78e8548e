//! `create`: everything is planned and validated before anything is created; then the
//! state dir, the cgroup, the intermediate and init. A [`Cleanup`] guard undoes all of
//! it on any error, so a failed create leaves no state dir, cgroup, mount or process.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, bind, listen, socket};
use nix::unistd::{ForkResult, Pid, fork};
use oci_spec::runtime::LinuxIdMapping;

use super::{CreateOptions, hook_state};
use crate::cgroups::{self, CgroupManager};
use crate::error::{Error, Result};
use crate::process::create::{InitCtx, intermediate};
use crate::state::{self, ContainerRecord, RuntimeRoot, START_SOCKET, Status};
use crate::sync::{self, ChildError, tag};
use crate::{hooks, spec};

/// Undoes a partial create on drop unless disarmed.
pub(crate) struct Cleanup<'a> {
    root: &'a RuntimeRoot,
    id: String,
    armed: bool,
    dir: bool,
    pub cgroup: Option<Box<dyn CgroupManager>>,
    pub intermediate: Option<Pid>,
    pub init: Option<Pid>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for pid in [self.init, self.intermediate].into_iter().flatten() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        if let Some(p) = self.intermediate {
            let _ = nix::sys::wait::waitpid(p, None);
        }
        if let Some(p) = self.init {
            // Not our child: wait until it is a zombie (or reaped by its reaper).
            if let Some((start, _)) = state::proc_stat(p.as_raw()) {
                super::wait_gone(p.as_raw(), start, std::time::Duration::from_secs(5));
            }
            super::reap_if_child(p.as_raw());
        }
        if let Some(cg) = &self.cgroup
            && let Err(e) = cg.remove()
        {
            tracing::warn!(id = %self.id, error = %e, "removing cgroup after failed create");
        }
        if self.dir
            && let Err(e) = self.root.remove_dir(&self.id)
        {
            tracing::warn!(id = %self.id, error = %e, "removing state dir after failed create");
        }
    }
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Binds the start socket in `dir` (through /proc/self/fd to stay under 108 bytes).
fn bind_start_socket(dir: &Path) -> Result<OwnedFd> {
    let dfd = std::fs::File::open(dir).map_err(|e| Error::io("opening state dir", dir, e))?;
    let path = PathBuf::from(format!("/proc/self/fd/{}/{START_SOCKET}", dfd.as_raw_fd()));
    let s = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("start socket", e))?;
    let addr = UnixAddr::new(&path).map_err(|e| Error::sys("start socket address", e))?;
    bind(s.as_raw_fd(), &addr).map_err(|e| Error::sys("binding start socket", e))?;
    listen(
        &s,
        nix::sys::socket::Backlog::new(4).map_err(|e| Error::sys("listen", e))?,
    )
    .map_err(|e| Error::sys("listen on start socket", e))?;
    Ok(s)
}

fn open_ns(path: &Path) -> Result<OwnedFd> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("opening namespace", path, e))?;
    Ok(OwnedFd::from(f))
}

/// Debug-level phase timestamps of one create (`--debug`): microseconds since the
/// create began, one event per phase. Filtered out (a cached callsite check) otherwise.
struct Phases<'a> {
    id: &'a str,
    t0: std::time::Instant,
}

impl Phases<'_> {
    fn mark(&self, phase: &'static str) {
        tracing::debug!(
            id = self.id,
            phase,
            us = self.t0.elapsed().as_micros() as u64,
            "create phase"
        );
    }
}

/// Creates container `id` from `bundle`; returns the init's host pid. The init waits for
/// `start`. The container's stdio are `opts.stdio`, or the caller's fds 0, 1, 2.
///
/// The intermediate joins the cgroup itself
/// ([`crate::cgroups::CgroupManager::self_join_files`]): on cgroup v1 a pid written
/// to `cgroup.procs` by the parent first waits for an RCU grace period, which was
/// the largest phase of a create. See the `--debug` phase events.
pub fn create(root: &RuntimeRoot, id: &str, bundle: &Path, opts: &CreateOptions) -> Result<i32> {
    let phases = Phases {
        id,
        t0: std::time::Instant::now(),
    };
    state::validate_id(id)?;
    let b = spec::load(bundle)?;
    let plan = super::plan::plan(&b, id, opts)?;
    let ns = plan.ns.clone();
    let spec = &b.spec;
    let prestart = plan.prestart.clone();
    let create_runtime = plan.create_runtime.clone();
    let cgroup_path = plan.cgroup_path.clone();
    phases.mark("planned");

    // From here on everything is undone on error.
    let dir = root.create_dir(id)?;
    let mut guard = Cleanup {
        root,
        id: id.to_owned(),
        armed: true,
        dir: true,
        cgroup: None,
        intermediate: None,
        init: None,
    };
    let cg = cgroups::open(&cgroup_path).map_err(|source| Error::Cgroup {
        id: id.to_owned(),
        source,
    })?;
    let cgroup2_host = cgroups::is_unified_host();
    let cgroup_dirs = cg.dirs();
    guard.cgroup = Some(cg);
    let cg = guard.cgroup.as_ref().expect("set just above");
    cg.apply(plan.resources.as_ref())
        .map_err(|source| Error::Cgroup {
            id: id.to_owned(),
            source,
        })?;
    phases.mark("cgroup-created");

    let listener = bind_start_socket(&dir)?;
    let console = opts
        .console_socket
        .as_deref()
        .map(crate::tty::connect_console)
        .transpose()?;
    let mut ns_files = Vec::new();
    for (t, p) in &ns.joins {
        ns_files.push((*t, open_ns(p)?));
    }
    let (parent_chan, child_chan) = sync::pair()?;
    let mut rootfs = plan.rootfs;
    rootfs.cgroup_dirs = cgroup_dirs;
    rootfs.cgroup2_host = cgroup2_host;
    let ctx = InitCtx {
        ns: plan.ns,
        ns_fds: ns_files.iter().map(|(t, f)| (*t, f.as_raw_fd())).collect(),
        cgroup_join: cg.self_join_files(),
        start_listener: listener.as_raw_fd(),
        console: console.as_ref().map(|c| c.as_raw_fd()),
        preserve_fds: opts.preserve_fds,
        stdio: opts.stdio,
        process: plan.process,
        rootfs,
        hostname: plan.hostname,
        domainname: plan.domainname,
        time_offsets: plan.time_offsets,
        runtime_hooks: !prestart.is_empty() || !create_runtime.is_empty(),
        create_container_hooks: plan.create_container,
        start_container_hooks: plan.start_container,
    };

    // SAFETY: the runtime is single-threaded (a library contract); the child only
    // runs `intermediate`, which never returns.
    let child = match unsafe { fork() }.map_err(|e| Error::sys("fork", e))? {
        ForkResult::Child => {
            drop(parent_chan);
            intermediate(&ctx, &child_chan)
        }
        ForkResult::Parent { child } => child,
    };
    drop(child_chan);
    drop(listener);
    drop(console);
    drop(ns_files);
    guard.intermediate = Some(child);
    let fail = |e: ChildError| e.into_error(id);
    phases.mark("forked");

    parent_chan
        .send(tag::GO, &[])
        .map_err(|e| Error::sys("sync", e))?;
    if ns.new_user {
        parent_chan.expect(tag::USERNS).map_err(fail)?;
        let pid = child.as_raw();
        let gid_maps = plan.gid_mappings.as_slice();
        let uid_maps = plan.uid_mappings.as_slice();
        for (file, text) in [
            ("uid_map", map_text(uid_maps)),
            ("gid_map", map_text(gid_maps)),
        ] {
            let p = PathBuf::from(format!("/proc/{pid}/{file}"));
            std::fs::write(&p, text).map_err(|e| Error::io("writing id map", &p, e))?;
        }
        parent_chan
            .send(tag::MAPPED, &[])
            .map_err(|e| Error::sys("sync", e))?;
    }
    let raw = parent_chan.expect(tag::PID).map_err(fail)?;
    let init_pid = i32::from_le_bytes(
        raw.get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail("short pid message".into()))?,
    );
    guard.init = Some(Pid::from_raw(init_pid));
    let _ = nix::sys::wait::waitpid(child, None);
    guard.intermediate = None;
    phases.mark("cgroup-and-namespaces");

    let (pid_start, _) =
        state::proc_stat(init_pid).ok_or_else(|| fail("init exited during create".into()))?;
    let rec = ContainerRecord {
        id: id.to_owned(),
        pid: init_pid,
        pid_start,
        bundle: b.dir.clone(),
        rootfs: b.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: owner_name(),
        started: false,
        cgroup_path,
        config: spec.clone(),
    };
    // Saved before the hooks run, so they can query `state`.
    root.save(&rec)?;
    phases.mark("state-saved");
    let state_json = hook_state(&rec, Status::Created);
    parent_chan
        .send(tag::STATE, &state_json)
        .map_err(|e| Error::sys("sync", e))?;
    loop {
        match parent_chan.recv() {
            Ok(Some((tag::HOOKS, _))) => {
                for (kind, list) in [("prestart", &prestart), ("createRuntime", &create_runtime)] {
                    hooks::run(kind, list, &state_json).map_err(|(path, reason)| Error::Hook {
                        kind,
                        path,
                        reason,
                    })?;
                }
                parent_chan
                    .send(tag::HOOKS_DONE, &[])
                    .map_err(|e| Error::sys("sync", e))?;
            }
            Ok(Some((tag::READY, _))) => {
                phases.mark("init-ready");
                break;
            }
            Ok(Some((t, p))) => {
                return Err(fail(ChildError::decode(t, &p).unwrap_or_else(|| {
                    format!("unexpected sync message {:?}", t as char).into()
                })));
            }
            Ok(None) => return Err(fail("init exited during create".into())),
            Err(e) => return Err(Error::sys("sync", e)),
        }
    }
    if let Some(pf) = &opts.pid_file {
        state::write_atomic(pf, init_pid.to_string().as_bytes())?;
    }
    guard.armed = false;
    phases.mark("pid-file");
    tracing::info!(id, pid = init_pid, "created");
    Ok(init_pid)
}

fn owner_name() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}
