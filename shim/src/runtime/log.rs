//! The runtime's `--log` file (`<bundle>/log.json`, runc's JSON lines, see
//! [`berth_runtime::log`]): what a failed runtime command said, and the one
//! place a helper's failure becomes a [`RuntimeError`] (the kind-to-variant rule
//! is `RuntimeError::of_kind`).
//!
//! Each command appends to the same file; the reader starts at the length
//! the file had before the command ran, so an older command's error is never
//! taken for this one's. Lines that do not parse are skipped (runc writes the
//! same shape without berth's `kind`; then only the message is known).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use berth_runtime::ErrorKind as RuntimeKind;
use berth_runtime::log::Record;

use super::RuntimeError;

/// The current length of the log (where the next command's lines begin).
pub fn mark(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The last error record written at or after byte `from`.
pub fn last_error(path: &Path, from: u64) -> Option<Record> {
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut text = Vec::new();
    f.read_to_end(&mut text).ok()?;
    last_error_in(&String::from_utf8_lossy(&text))
}

/// The last `"level":"error"` record of `text`.
pub fn last_error_in(text: &str) -> Option<Record> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .rfind(Record::is_error)
}

/// The error of runtime command `op` on `id` that exited with `status`:
/// typed by the log record's kind when there is one, with the record's
/// message (else what the command printed on stderr).
pub fn failure(
    op: &'static str,
    id: &str,
    status: u32,
    record: Option<Record>,
    stderr: &str,
) -> RuntimeError {
    let kind = record
        .as_ref()
        .and_then(|r| r.kind.as_deref())
        .and_then(RuntimeKind::from_name);
    let message = match record {
        Some(r) if !r.msg.trim().is_empty() => r.msg.trim().to_owned(),
        _ => stderr.trim().to_owned(),
    };
    RuntimeError::of_kind(op, id, kind, &message).unwrap_or_else(|| RuntimeError::Failed {
        op,
        id: id.to_owned(),
        status,
        message,
    })
}

#[cfg(test)]
mod tests {
    use berth_api::{ErrorKind, HasKind};

    use super::*;

    const NOT_FOUND: &str = r#"{"level":"error","msg":"unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH","time":"2026-01-01T00:00:00Z","kind":"executable-not-found","errno":2}"#;

    #[test]
    fn the_last_error_line_wins_and_other_lines_are_skipped() {
        let text = format!(
            "{}\nnot json at all\n{}\n{}\n",
            r#"{"level":"error","msg":"older","time":"t"}"#,
            NOT_FOUND,
            r#"{"level":"info","msg":"later info","time":"t","id":"c"}"#,
        );
        let r = last_error_in(&text).expect("an error record");
        assert_eq!(r.kind.as_deref(), Some("executable-not-found"));
        assert_eq!(r.errno, Some(2));
        assert!(last_error_in(r#"{"level":"warning","msg":"w","time":"t"}"#).is_none());
        assert!(last_error_in("").is_none());
    }

    #[test]
    fn reading_starts_at_the_mark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.json");
        assert_eq!(mark(&path), 0, "no file yet");
        assert!(last_error(&path, 0).is_none());
        std::fs::write(&path, format!("{NOT_FOUND}\n")).expect("write");
        let from = mark(&path);
        assert!(
            last_error(&path, from).is_none(),
            "an older command's error"
        );
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("{\"level\":\"error\",\"msg\":\"container c: cgroup: busy\",\"time\":\"t\",\"kind\":\"internal\"}\n");
        std::fs::write(&path, text).expect("write");
        let r = last_error(&path, from).expect("this command's error");
        assert_eq!(r.msg, "container c: cgroup: busy");
    }

    #[test]
    fn kinds_become_variants_and_codes() {
        let missing = failure("create", "c1", 1, last_error_in(NOT_FOUND), "ignored");
        assert!(
            matches!(&missing, RuntimeError::ExecutableNotFound { op: "create", id, .. } if id == "c1")
        );
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(
            missing.to_string(),
            "OCI runtime create failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH"
        );
        assert_eq!(berth_api::status(&missing).code(), tonic::Code::NotFound);

        let denied = last_error_in(
            r#"{"level":"error","msg":"exec: \"/x\": permission denied","time":"t","kind":"not-executable","errno":13}"#,
        );
        let e = failure("start", "c1", 1, denied, "");
        assert!(matches!(e, RuntimeError::NotExecutable { op: "start", .. }));
        assert_eq!(e.kind(), ErrorKind::Internal);

        // runc's own record (no kind): the message, as containerd reports it.
        let runc = last_error_in(r#"{"level":"error","msg":"runc create failed: x","time":"t"}"#);
        let e = failure("create", "c1", 1, runc, "stderr text");
        assert!(
            matches!(&e, RuntimeError::Failed { message, status: 1, .. } if message == "runc create failed: x")
        );
        assert_eq!(e.kind(), ErrorKind::Internal);

        // No log at all: stderr.
        let e = failure("kill", "c1", 2, None, " no such container \n");
        assert!(
            matches!(&e, RuntimeError::Failed { message, .. } if message == "no such container")
        );
    }
}
