//! An error and its causes as one line of text: what a gRPC status message and a log
//! field carry, so a failure reaches the client with its reason
//! ("apply layer sha256:…: write usr/bin/x: No space left on device (os error 28)").
//!
//! Error kinds and codes are not here: each error's `kind()`, mapped to a code once in
//! `berth_api::error`.

use std::error::Error;
use std::fmt;

/// Displays `e`, then each cause after `": "`, so nothing is said twice: a cause is left
/// out when its parent's text already holds it (errors that print their source,
/// `#[error("x: {0}")]`), and only the rest of a cause is added when it begins with its
/// parent's text (`container "c1"` caused by `container "c1": not found`). A
/// `tonic::Status` cause is its message (a shim's or another service's answer), not its
/// debug-like display.
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

fn text(e: &(dyn Error + 'static)) -> String {
    match e.downcast_ref::<tonic::Status>() {
        Some(st) => st.message().to_owned(),
        None => e.to_string(),
    }
}

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = text(self.0);
        f.write_str(&said)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let t = text(e);
            if let Some(rest) = t.strip_prefix(said.as_str()) {
                f.write_str(rest)?;
            } else if !said.contains(&t) {
                write!(f, ": {t}")?;
            }
            said = t;
            cause = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `e` and its causes as one string (see [`Chain`]).
pub fn chain(e: &(dyn Error + 'static)) -> String {
    Chain(e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("write {path}")]
        Fs {
            path: String,
            #[source]
            source: std::io::Error,
        },
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("apply layer {digest}")]
        Apply {
            digest: String,
            #[source]
            source: Inner,
        },
        #[error("read config: {0}")]
        Printed(#[source] std::io::Error),
        #[error(transparent)]
        Transparent(Inner),
        #[error("container {id:?}")]
        Record {
            id: String,
            #[source]
            source: Missing,
        },
        #[error("shim of task {id:?}: {}", .source.message())]
        Shim {
            id: String,
            #[source]
            source: tonic::Status,
        },
    }

    #[derive(Debug, thiserror::Error)]
    #[error("container {id:?}: not found")]
    struct Missing {
        id: String,
    }

    fn enospc() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::ENOSPC)
    }

    #[test]
    fn every_cause_once_in_order() {
        let e = Outer::Apply {
            digest: "sha256:ab".into(),
            source: Inner::Fs {
                path: "usr/bin/x".into(),
                source: enospc(),
            },
        };
        assert_eq!(
            chain(&e),
            format!("apply layer sha256:ab: write usr/bin/x: {}", enospc())
        );
    }

    #[test]
    fn a_printed_source_is_not_repeated() {
        let e = Outer::Printed(enospc());
        assert_eq!(chain(&e), format!("read config: {}", enospc()));
        let e = Outer::Transparent(Inner::Fs {
            path: "etc".into(),
            source: enospc(),
        });
        assert_eq!(chain(&e), format!("write etc: {}", enospc()));
    }

    #[test]
    fn a_cause_that_extends_its_parent_adds_only_the_rest() {
        let e = Outer::Record {
            id: "c1".into(),
            source: Missing { id: "c1".into() },
        };
        assert_eq!(chain(&e), "container \"c1\": not found");
    }

    #[test]
    fn a_status_cause_is_its_message() {
        let e = Outer::Shim {
            id: "c1".into(),
            source: tonic::Status::not_found("exec: \"x\": not found"),
        };
        assert_eq!(chain(&e), "shim of task \"c1\": exec: \"x\": not found");
    }
}
