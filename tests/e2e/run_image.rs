//! `ctr run` of an image pulled from a local registry into berthd, end to end: stdio and
//! the exit code of a foreground run, and the detached lifecycle (exec, SIGKILL, task and
//! container removal) leaving no snapshot and no mount behind.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::{Berthd, Registry, ctr, ctr_ok, images, require_root};

/// Polls `cond` every 10 ms until it holds; panics with `what` after `limit`.
fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The STATUS column of `ctr tasks ls` for `id`, if the task is listed.
fn task_status(sock: &Path, ns: &str, id: &str) -> Option<String> {
    let out = ctr_ok(sock, ns, &["tasks", "ls"]);
    out.stdout.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&id)).then(|| f.get(2).map(|s| s.to_string()).unwrap_or_default())
    })
}

/// The KEY column of `ctr snapshots ls`.
fn snapshot_keys(sock: &Path, ns: &str) -> Vec<String> {
    ctr_ok(sock, ns, &["snapshots", "ls"])
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Mount points at or below `tree` in this mount namespace.
fn mounts_under(tree: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(tree))
        .map(str::to_string)
        .collect()
}

#[test]
fn run_pulled_busybox_stdio_exit_code_and_detached_lifecycle_leave_nothing() {
    if !require_root("run_pulled_busybox_stdio_exit_code_and_detached_lifecycle_leave_nothing") {
        return;
    }
    let registry = Registry::start().expect("registry");
    let d = Berthd::start();
    let ns = d.namespace();
    let sock = d.socket();
    let tree = d.root().parent().expect("root has a parent").to_path_buf();
    let reference = images().busybox.push(&registry).expect("push busybox");
    ctr_ok(&sock, &ns, &["images", "pull", "--plain-http", &reference]);
    let image_snapshots = snapshot_keys(&sock, &ns);
    assert!(
        !image_snapshots.is_empty(),
        "the pull left no committed snapshot"
    );

    // Foreground run: stdout and stderr kept apart, the exit code passed through.
    let out = ctr(
        &sock,
        &ns,
        &[
            "run",
            "--rm",
            &reference,
            "c1",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(out.code, Some(3), "ctr run exit code: {out:?}\n{}", d.log());
    assert_eq!(out.stdout, "out\n", "stdout: {out:?}");
    assert_eq!(out.stderr, "err\n", "stderr: {out:?}");
    assert_eq!(task_status(&sock, &ns, "c1"), None, "--rm left the task");
    let containers = ctr_ok(&sock, &ns, &["containers", "ls", "-q"]).stdout;
    assert!(
        !containers.lines().any(|l| l.trim() == "c1"),
        "--rm left the container: {containers}"
    );

    // Detached run, exec, SIGKILL, removal.
    ctr_ok(
        &sock,
        &ns,
        &["run", "-d", &reference, "c2", "sleep", "1000"],
    );
    assert_eq!(
        task_status(&sock, &ns, "c2").as_deref(),
        Some("RUNNING"),
        "c2 after run -d"
    );
    assert!(
        snapshot_keys(&sock, &ns).iter().any(|k| k == "c2"),
        "c2's active snapshot is listed while it runs"
    );
    let exec = ctr_ok(
        &sock,
        &ns,
        &[
            "tasks",
            "exec",
            "--exec-id",
            "e1",
            "c2",
            "sh",
            "-c",
            "echo hi",
        ],
    );
    assert_eq!(exec.stdout, "hi\n", "exec output: {exec:?}");
    ctr_ok(&sock, &ns, &["tasks", "kill", "-s", "SIGKILL", "c2"]);
    eventually(Duration::from_secs(5), "c2 STOPPED after SIGKILL", || {
        task_status(&sock, &ns, "c2").as_deref() == Some("STOPPED")
    });
    ctr_ok(&sock, &ns, &["tasks", "rm", "c2"]);
    assert_eq!(task_status(&sock, &ns, "c2"), None, "tasks rm left c2");
    ctr_ok(&sock, &ns, &["containers", "rm", "c2"]);

    let keys = snapshot_keys(&sock, &ns);
    assert!(
        !keys.iter().any(|k| k == "c2" || k == "c1"),
        "container snapshots left: {keys:?}"
    );
    assert_eq!(keys, image_snapshots, "only the image's snapshots remain");
    let left = mounts_under(&tree);
    assert!(
        left.is_empty(),
        "mounts left under {}: {left:?}",
        tree.display()
    );
}
