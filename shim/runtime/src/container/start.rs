//! `start`: wakes the created init through its start socket and waits until it has
//! exec'd the container process (EOF) or reported an error; then poststart hooks.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use super::{hook_state, load, run_warn_hooks};
use crate::error::{Error, Result};
use crate::state::{RuntimeRoot, START_SOCKET, Status};
use crate::sync::ChildError;

/// Starts the user process of created container `id`.
pub fn start(root: &RuntimeRoot, id: &str) -> Result<()> {
    let mut l = load(root, id)?;
    if !l.status.can_start() {
        return Err(Error::WrongState {
            id: id.to_owned(),
            status: l.status.to_string(),
            op: "start",
        });
    }
    let dir = root.container_dir(id)?;
    let dfd = std::fs::File::open(&dir).map_err(|e| Error::io("opening state dir", &dir, e))?;
    let sock = format!("/proc/self/fd/{}/{START_SOCKET}", dfd.as_raw_fd());
    let mut conn = UnixStream::connect(&sock)
        .map_err(|e| Error::io("connecting start socket", dir.join(START_SOCKET), e))?;
    conn.write_all(b"s")
        .map_err(|e| Error::io("starting", dir.join(START_SOCKET), e))?;
    let mut msg = Vec::new();
    // EOF without bytes: the process was exec'd (the connection is close-on-exec);
    // anything else is the init's encoded error.
    let _ = conn.read_to_end(&mut msg);
    let _ = std::fs::remove_file(dir.join(START_SOCKET));
    l.rec.started = true;
    root.save(&l.rec)?;
    if !msg.is_empty() {
        return Err(ChildError::from_bytes(&msg).into_error(id));
    }
    tracing::info!(id, pid = l.rec.pid, "started");
    let hooks = l.rec.config.hooks().clone().unwrap_or_default();
    if let Some(list) = hooks.poststart().as_ref().filter(|l| !l.is_empty()) {
        let_process_run(l.rec.pid, l.rec.pid_start);
        run_warn_hooks("poststart", id, list, &hook_state(&l.rec, Status::Running));
    }
    Ok(())
}

/// Poststart hooks run "after the user-specified process is executed": give the
/// just-exec'd process the CPU until it blocks or exits (bounded at 20 ms), so a hook
/// does not overtake its first steps.
fn let_process_run(pid: i32, start: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(20);
    while std::time::Instant::now() < deadline {
        match crate::state::proc_stat(pid) {
            Some((s, 'R')) if s == start => std::thread::yield_now(),
            _ => return,
        }
    }
}
