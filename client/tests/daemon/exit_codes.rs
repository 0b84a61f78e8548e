//! Exit codes of a command that cannot run, end to end: berthctl (docker's 127
//! for a missing command, 126 for one that cannot be executed) and the real
//! `ctr` (fails at Tasks.Create with runc's message). The ctr part also needs
//! `ctr` on PATH; without it it returns early, except under `CI=true`.

use std::process::{Command, Output, Stdio};

use super::{Containers, NamespaceCgroups, unique, with_image};

/// The one line berthctl printed on stderr for a failed run.
fn error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    err.lines()
        .rfind(|l| l.starts_with("berthctl: "))
        .unwrap_or_else(|| panic!("no berthctl error line in {err:?}"))
        .to_owned()
}

#[test]
fn commands_that_cannot_run_exit_like_docker_and_fail_ctr_at_create() {
    let Some((d, ns, image)) =
        with_image("commands_that_cannot_run_exit_like_docker_and_fail_ctr_at_create")
    else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let (name, id) = (unique("live"), unique("ctr"));
    let mut guard = Containers {
        daemon: &d,
        ns: ns.clone(),
        ids: vec![name.clone(), id.clone()],
    };

    // Not in $PATH: 127, with runc's message, and --rm left nothing behind.
    let out = d.ctl(&ns, &["run", "--rm", &image, "nosuchcmd"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "stderr: {}\nberthd: {}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let line = error_line(&out);
    let message = r#"exec: "nosuchcmd": executable file not found in $PATH"#;
    assert!(line.contains(message), "{line}");
    // Said once, in the error: the runtime's own stderr (the container's) is
    // not copied when create fails.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches(message).count(), 1, "{stderr}");
    assert_eq!(d.ok(&ns, &["ps", "-a", "-q"]), "");

    // A path that does not exist: 127 as well.
    let out = d.ctl(&ns, &["run", "--rm", &image, "/bin/gone"]);
    assert_eq!(out.status.code(), Some(127), "{}", error_line(&out));

    // Exists but is not executable: 126.
    let out = d.ctl(&ns, &["run", "--rm", &image, "/bin/data"]);
    assert_eq!(out.status.code(), Some(126), "{:?}", out.stderr);
    assert!(
        error_line(&out).contains(r#"exec: "/bin/data": permission denied"#),
        "{}",
        error_line(&out)
    );
    assert_eq!(d.ok(&ns, &["ps", "-a", "-q"]), "");

    // exec of a missing command in a running container: 127; the container runs on.
    d.ok(&ns, &["run", "-d", "--name", &name, &image, "sleep", "300"]);
    let out = d.ctl(&ns, &["exec", &name, "nosuchcmd"]);
    let removed = d.ctl(&ns, &["rm", "-f", &name]);
    assert_eq!(out.status.code(), Some(127), "{:?}", out.stderr);
    assert!(error_line(&out).contains("executable file not found"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("executable file not found").count(),
        1,
        "{stderr}"
    );
    assert!(removed.status.success(), "{removed:?}");

    // The real ctr: fails at Tasks.Create with the runtime's message.
    if Command::new("ctr").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "ctr is missing under CI=true"
        );
        return;
    }
    let ctr = Command::new("ctr")
        .arg("--address")
        .arg(d.socket())
        .args(["--namespace", &ns, "run", "--rm", &image, &id, "nosuchcmd"])
        .stdin(Stdio::null())
        .output()
        .expect("run ctr");
    let err = String::from_utf8_lossy(&ctr.stderr);
    assert!(!ctr.status.success(), "ctr run succeeded: {err}");
    assert!(err.contains("executable file not found"), "{err}");
    assert_eq!(d.ok(&ns, &["ps", "-a", "-q"]), "", "ctr run --rm left it");
    guard.ids.clear();
}
