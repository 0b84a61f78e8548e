//! `berthctl run -it` driven through a real terminal: a detached tmux
//! session on a private server socket.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Daemon, NamespaceCgroups, named_container, unique, with_image};

/// A tmux server on its own socket (`tmux -L NAME`); killed, and its
/// socket file removed, on drop.
pub struct Tmux {
    socket: String,
    socket_path: Option<std::path::PathBuf>,
}

impl Tmux {
    /// Starts a server with `config` and a detached 80x24 session `s`
    /// running `command` (a shell command line).
    pub fn start(config: &Path, command: &str) -> Tmux {
        let mut tmux = Tmux {
            socket: unique("berth-tmux"),
            socket_path: None,
        };
        let out = tmux
            .cmd()
            .arg("-f")
            .arg(config)
            .args(["new-session", "-d", "-x", "80", "-y", "24", "-s", "s"])
            .arg(command)
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux new-session: {out:?}");
        let path = tmux.run(&["display-message", "-p", "#{socket_path}"]);
        tmux.socket_path = Some(path.trim().into());
        tmux
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }

    /// Runs a tmux command and returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` and Enter into the pane.
    pub fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "s", "-l", text]);
        self.run(&["send-keys", "-t", "s", "Enter"]);
    }

    /// The visible pane.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "s"])
    }

    /// Polls `probe` (every 20 ms) until it returns `Some`, for at most
    /// `limit`; panics with the screen otherwise.
    pub fn until<T>(
        &self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut(&Tmux) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = probe(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not seen within {limit:?}; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls the screen until a line equal to `line` (trailing blanks
    /// ignored) appears.
    pub fn until_line(&self, line: &str, limit: Duration) {
        self.until(line, limit, |t| {
            t.screen()
                .lines()
                .any(|l| l.trim_end() == line)
                .then_some(())
        });
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether tmux is installed; under `CI=true` it must be.
pub fn have_tmux(test: &str) -> bool {
    if Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: tmux is missing under CI=true (scripts/packages.sh installs it)"
    );
    eprintln!("{test}: skipped, tmux not installed");
    false
}

/// What the pane prints after berthctl exits, before its status.
const EXIT_MARK: &str = "berthctl-exit=";

/// The shell command line tmux runs: berthctl with the daemon's socket and
/// the namespace, then its exit status printed (see [`exit_status`]).
pub fn berthctl_line(d: &Daemon, ns: &str, args: &[&str]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = format!(
        "env -u BERTH_LOG BERTH_ADDRESS={} BERTH_NAMESPACE={} {}",
        quote(d.socket().to_str().expect("utf8 socket")),
        quote(ns),
        quote(env!("CARGO_BIN_EXE_berthctl"))
    );
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    line.push_str(&format!("; echo {EXIT_MARK}$?"));
    line
}

/// A tmux config that keeps a pane after its command exits, so the last
/// lines stay readable.
pub fn keep_panes(dir: &Path) -> std::path::PathBuf {
    let conf = dir.join("tmux.conf");
    std::fs::write(&conf, "set -g remain-on-exit on\n").expect("tmux.conf");
    conf
}

/// Waits until berthctl exited (the pane printed its status; tmux's own
/// `pane_dead` can lag when output and exit race); returns the status.
/// `diag` is called for the failure message if it does not exit in time.
pub fn exit_status(tmux: &Tmux, diag: impl Fn() -> String) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    tmux.until("berthctl exit", Duration::from_secs(30), |t| {
        assert!(
            Instant::now() < deadline,
            "berthctl did not exit: {}",
            diag()
        );
        t.screen().lines().find_map(|l| {
            l.trim_end()
                .strip_prefix(EXIT_MARK)
                .and_then(|code| code.parse().ok())
        })
    })
}

#[test]
fn run_it_gives_a_prompt_computes_and_follows_resizes() {
    let test = "run_it_gives_a_prompt_computes_and_follows_resizes";
    if !have_tmux(test) {
        return;
    }
    let Some((d, ns, image)) = with_image(test) else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let (name, _guard) = named_container(&d, &ns, "tty");
    let conf = keep_panes(d.dir.path());
    let line = berthctl_line(
        &d,
        &ns,
        &["run", "-it", "--rm", "--name", &name, &image, "sh"],
    );
    let tmux = Tmux::start(&conf, &line);
    let limit = Duration::from_secs(20);

    // busybox sh's root prompt.
    tmux.until_line("/ #", limit);
    tmux.type_line("echo $((6*7))");
    tmux.until_line("42", limit);
    tmux.type_line("stty size");
    tmux.until_line("24 80", limit);

    tmux.run(&["resize-window", "-t", "s", "-x", "100", "-y", "30"]);
    // The resize reaches the container through SIGWINCH → ResizePty; ask
    // again until the new size shows (each probe prints a fresh line).
    tmux.until("stty size 30 100", limit, |t| {
        t.type_line("stty size");
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if t.screen().lines().any(|l| l.trim_end() == "30 100") {
                return Some(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    });

    tmux.type_line("exit 3");
    let diag = || format!("ps -a: {}\nberthd: {}", d.ok(&ns, &["ps", "-a"]), d.log());
    assert_eq!(exit_status(&tmux, diag), 3, "screen:\n{}", tmux.screen());
    // --rm removed the container.
    assert_eq!(d.ok(&ns, &["ps", "-a", "-q"]), "");
}
