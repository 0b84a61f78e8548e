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

/// The exit code for a failure to create or start the container's process:
/// 127 when the command does not exist, 126 when it exists but cannot be
/// run, 125 when berthd itself failed.
///
/// The runtime reports a missing executable as an internal error whose
/// message says so; until it carries a kind of its own, the message is the
/// only signal (see the report to the shim owners).
pub fn start_failure_code(e: &berth_client::Error) -> u8 {
    match e.kind() {
        ErrorKind::Unavailable | ErrorKind::NotImplemented | ErrorKind::Canceled => USAGE,
        _ => {
            let text = e.to_string();
            if text.contains("not found in $PATH")
                || text.contains("executable file not found")
                || text.contains("no such file or directory")
            {
                NOT_FOUND
            } else if let berth_client::Error::Rpc { method, .. } = e {
                if matches!(*method, "Tasks.Create" | "Tasks.Start" | "Tasks.Exec") {
                    CANNOT_INVOKE
                } else {
                    USAGE
                }
            } else {
                USAGE
            }
        }
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
    fn start_failures_map_like_docker() {
        let missing = rpc(
            "Tasks.Start",
            tonic::Code::Internal,
            "exec \"nope\": executable file not found in $PATH",
        );
        assert_eq!(start_failure_code(&missing), NOT_FOUND);
        let denied = rpc(
            "Tasks.Create",
            tonic::Code::Internal,
            "exec /etc/passwd: permission denied",
        );
        assert_eq!(start_failure_code(&denied), CANNOT_INVOKE);
        let down = rpc("Tasks.Create", tonic::Code::Unavailable, "");
        assert_eq!(start_failure_code(&down), USAGE);
        let unbuilt = rpc("Tasks.Create", tonic::Code::Unimplemented, "");
        assert_eq!(start_failure_code(&unbuilt), USAGE);
        let other = rpc("Containers.Get", tonic::Code::Internal, "db");
        assert_eq!(start_failure_code(&other), USAGE);
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
