//! Exit codes (docker's) and the one-sentence error berthctl prints.

use berth_api::ErrorKind;

/// berthctl or berthd failed (usage, connection, RPC).
pub const USAGE: u8 = 125;
/// The container command could not be invoked.
pub const CANNOT_INVOKE: u8 = 126;
/// The container command was not found.
pub const NOT_FOUND: u8 = 127;

/// A failure: the exit code and one human sentence.
#[derive(Debug)]
pub struct CliError {
    /// Process exit code.
    pub code: u8,
    /// What went wrong, with its cause.
    pub message: String,
}

impl CliError {
    /// A usage / daemon failure (125).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: USAGE,
            message: message.into(),
        }
    }
}

/// `error: cause: cause` — the Display of an error and its sources, each
/// once (a cause already quoted by its parent is not repeated).
pub fn sentence(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !c.is_empty() && !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        source = cause.source();
    }
    text
}

impl From<berth_client::Error> for CliError {
    fn from(e: berth_client::Error) -> CliError {
        let message = match &e {
            berth_client::Error::Connect { .. } => {
                format!(
                    "{} (is berthd running? set --address or BERTH_ADDRESS)",
                    sentence(&e)
                )
            }
            _ => sentence(&e),
        };
        CliError {
            code: USAGE,
            message,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> CliError {
        CliError::usage(format!("{e:#}"))
    }
}

/// The exit code for a failure to create or start the container's process,
/// chosen by the error's kind, never its text:
/// - 127 when the command does not exist: `NotFound` from Tasks.Create (the
///   runtime looks the command up before the container is created, like
///   runc) or Tasks.Start (an exec's command, or an init's removed after
///   create). Tasks.Exec only registers a process, so its `NotFound` is the
///   task, not the command;
/// - 125 when berthd could not be asked (unavailable, unimplemented, cancelled)
///   or another call failed;
/// - 126 for every other failure of Tasks.Create/Start/Exec: the command
///   exists but cannot be invoked (not executable, bad spec, runtime failure).
pub fn start_failure_code(e: &berth_client::Error) -> u8 {
    let method = e.method();
    match e.kind() {
        ErrorKind::Unavailable | ErrorKind::NotImplemented | ErrorKind::Canceled => USAGE,
        ErrorKind::NotFound if matches!(method, Some("Tasks.Create" | "Tasks.Start")) => NOT_FOUND,
        _ if matches!(method, Some("Tasks.Create" | "Tasks.Start" | "Tasks.Exec")) => CANNOT_INVOKE,
        _ => USAGE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(method: &'static str, code: tonic::Code, msg: &str) -> berth_client::Error {
        berth_client::Error::rpc(method, tonic::Status::new(code, msg))
    }

    #[test]
    fn daemon_errors_are_125_with_one_sentence() {
        let e: CliError = rpc(
            "Images.Get",
            tonic::Code::NotFound,
            "image \"x\": not found",
        )
        .into();
        assert_eq!(e.code, USAGE);
        assert_eq!(e.message, "image \"x\": not found");
        let e: CliError = rpc("Snapshots.List", tonic::Code::Unimplemented, "").into();
        assert_eq!(e.message, "berthd does not implement Snapshots.List yet");
    }

    #[test]
    fn start_failures_map_by_kind_like_docker() {
        use tonic::Code;
        let code = |method, c| start_failure_code(&rpc(method, c, "some message"));
        // The command does not exist: NotFound from Create (init) or Start (exec).
        assert_eq!(code("Tasks.Create", Code::NotFound), NOT_FOUND);
        assert_eq!(code("Tasks.Start", Code::NotFound), NOT_FOUND);
        // Exec only registers the process: its NotFound is the task.
        assert_eq!(code("Tasks.Exec", Code::NotFound), CANNOT_INVOKE);
        // The text does not decide: a missing-file sentence with another kind
        // is not 127, a NotFound with any text is.
        let missing_text = rpc(
            "Tasks.Create",
            Code::Internal,
            "exec: \"nope\": executable file not found in $PATH",
        );
        assert_eq!(start_failure_code(&missing_text), CANNOT_INVOKE);
        assert_eq!(
            start_failure_code(&rpc("Tasks.Start", Code::NotFound, "")),
            NOT_FOUND
        );
        // Exists but cannot be invoked, or any other start failure: 126.
        for c in [
            Code::Internal,
            Code::Unknown,
            Code::PermissionDenied,
            Code::FailedPrecondition,
            Code::InvalidArgument,
        ] {
            for m in ["Tasks.Create", "Tasks.Start", "Tasks.Exec"] {
                assert_eq!(code(m, c), CANNOT_INVOKE, "{m} {c:?}");
            }
        }
        // berthd unreachable or the call not built: 125.
        for c in [Code::Unavailable, Code::Unimplemented, Code::Cancelled] {
            assert_eq!(code("Tasks.Create", c), USAGE, "{c:?}");
        }
        // Other calls (and NotFound from them) are daemon errors: 125.
        assert_eq!(code("Containers.Get", Code::Internal), USAGE);
        assert_eq!(code("Containers.Get", Code::NotFound), USAGE);
        assert_eq!(
            start_failure_code(&berth_client::Error::NotFound("user x".into())),
            USAGE
        );
    }

    #[test]
    fn sentences_join_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open x")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(sentence(&e), "cannot open x: disk on fire");
    }
}
