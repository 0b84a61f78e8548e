//! OCI hooks: run with the container state JSON on stdin, their output captured for the
//! error message, killed after their timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// Runs `hooks` in order; the first failure stops and is returned as a message.
/// Never logs: it also runs in the container's init, whose stdio is the container's.
pub fn run(
    _kind: &'static str,
    hooks: &[Hook],
    state_json: &[u8],
) -> Result<(), (std::path::PathBuf, String)> {
    for h in hooks {
        run_one(h, state_json).map_err(|e| (h.path().clone(), e))?;
    }
    Ok(())
}

fn run_one(h: &Hook, state_json: &[u8]) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let timeout = h.timeout().filter(|t| *t > 0);
    if timeout.is_some() {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes the pipe: not an error (EPIPE).
        let _ = stdin.write_all(state_json);
    }
    let status = match timeout {
        None => {
            let out = child.wait_with_output().map_err(|e| format!("wait: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{}; stdout: {}; stderr: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout).trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            return Ok(());
        }
        Some(t) => {
            let deadline = Instant::now() + Duration::from_secs(t as u64);
            loop {
                if let Some(s) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
                    break s;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("timed out after {t}s"));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(status.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).expect("hook json")
    }

    #[test]
    fn state_on_stdin_and_failures() {
        let t = tempfile::tempdir().expect("tempdir");
        let out = t.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {}"]}}"#,
            out.display()
        ));
        run("prestart", &[h], b"{\"id\":\"x\"}").expect("hook runs");
        assert_eq!(std::fs::read(&out).expect("out"), b"{\"id\":\"x\"}");
        let bad = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo oops >&2; exit 3"]}"#);
        let (_, msg) = run("prestart", &[bad], b"{}").expect_err("fails");
        assert!(msg.contains("oops") && msg.contains('3'), "{msg}");
        let slow = hook(r#"{"path":"/bin/sh","args":["sh","-c","exec sleep 5"],"timeout":1}"#);
        let (_, msg) = run("prestart", &[slow], b"{}").expect_err("times out");
        assert!(msg.contains("timed out"));
        let quiet = hook(r#"{"path":"/bin/true"}"#);
        run("poststart", &[quiet], &vec![b'x'; 1 << 20]).expect("EPIPE is fine");
    }
}
