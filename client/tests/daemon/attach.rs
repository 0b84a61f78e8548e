//! `run -d -i/-t` keeps the stdio FIFOs; `attach` joins them again.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::interactive::{Tmux, berthctl_line, exit_status, have_tmux, keep_panes};
use super::{Containers, NamespaceCgroups, named_container, unique, with_image};

#[test]
fn attach_joins_a_detached_interactive_container() {
    let Some((d, ns, image)) = with_image("attach_joins_a_detached_interactive_container") else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let (name, plain) = (unique("att"), unique("plain"));
    let mut guard = Containers {
        daemon: &d,
        ns: ns.clone(),
        ids: vec![name.clone(), plain.clone()],
    };
    let script = "read line; echo got $line; echo to-err >&2; exit 7";
    let printed = d.ok(
        &ns,
        &[
            "run", "-d", "-i", "--name", &name, &image, "sh", "-c", script,
        ],
    );
    assert_eq!(printed.trim(), name);
    let inspect: Value =
        serde_json::from_str(&d.ok(&ns, &["inspect", &name])).expect("inspect json");
    let stdout_fifo = inspect[0]["task"]["stdout"]
        .as_str()
        .expect("stdout path")
        .to_string();
    assert!(
        std::path::Path::new(&stdout_fifo).exists(),
        "kept fifo {stdout_fifo} exists after run -d exited"
    );

    let mut attach = d
        .ctl_cmd(&ns, &["attach", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn attach");
    attach
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello\n")
        .expect("write");
    let out = attach.wait_with_output().expect("attach");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "got hello\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("to-err"));
    assert_eq!(out.status.code(), Some(7), "the container's exit status");

    // Stopped now: attaching again is a clear error.
    let again = d.ctl(&ns, &["attach", &name]);
    assert_eq!(again.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("stopped"),
        "{again:?}"
    );
    // The container log kept a copy of what went through the FIFOs.
    let state = d.dir.path().join("state");
    let logs = d.ok(
        &ns,
        &["--state", state.to_str().expect("utf8"), "logs", &name],
    );
    assert!(logs.contains("got hello"), "{logs}");
    // rm removes the kept FIFOs with the container.
    assert_eq!(d.ok(&ns, &["rm", &name]).trim(), name);
    assert!(
        !std::path::Path::new(&stdout_fifo).exists(),
        "fifos removed"
    );

    // A plain run -d writes to its log: nothing to attach to.
    d.ok(&ns, &["run", "-d", "--name", &plain, &image, "sleep", "60"]);
    let refused = d.ctl(&ns, &["attach", &plain]);
    assert_eq!(refused.status.code(), Some(125));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("log") && err.lines().count() == 1, "{err}");
    d.ok(&ns, &["rm", "-f", &plain]);
    guard.ids.clear();
}

#[test]
fn attach_to_a_detached_terminal_through_tmux() {
    let test = "attach_to_a_detached_terminal_through_tmux";
    if !have_tmux(test) {
        return;
    }
    let Some((d, ns, image)) = with_image(test) else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let (name, _guard) = named_container(&d, &ns, "datt");
    d.ok(&ns, &["run", "-d", "-it", "--name", &name, &image, "sh"]);
    let conf = keep_panes(d.dir.path());
    let tmux = Tmux::start(&conf, &berthctl_line(&d, &ns, &["attach", &name]));
    let limit = Duration::from_secs(20);
    // The prompt printed before anyone attached waited in the FIFO.
    tmux.until_line("/ #", limit);
    tmux.type_line("echo $((6*7))");
    tmux.until_line("42", limit);
    // The detach keys leave it running.
    tmux.run(&["send-keys", "-t", "s", "C-p", "C-q"]);
    let diag = || format!("ps -a: {}", d.ok(&ns, &["ps", "-a"]));
    assert_eq!(exit_status(&tmux, diag), 0, "screen:\n{}", tmux.screen());
    assert!(tmux.screen().contains("detached from"), "{}", tmux.screen());
    drop(tmux);
    let ps = d.ok(&ns, &["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&name) && l.ends_with("running")),
        "{ps}"
    );

    // Attach again: attach sets the terminal to its own window size on
    // joining.
    let tmux = Tmux::start(&conf, &berthctl_line(&d, &ns, &["attach", &name]));
    tmux.type_line("stty size");
    tmux.until_line("24 80", limit);
    tmux.type_line("exit 4");
    let diag = || {
        let pids = std::process::Command::new("pgrep")
            .args(["-af", &format!("attach {name}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        format!(
            "ps -a: {}\nattach processes: {pids}\nberthd: {}",
            d.ok(&ns, &["ps", "-a"]),
            d.log()
        )
    };
    assert_eq!(exit_status(&tmux, diag), 4, "screen:\n{}", tmux.screen());
    let ps = d.ok(&ns, &["ps", "-a"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&name) && l.contains("exited (4)")),
        "{ps}"
    );
}
