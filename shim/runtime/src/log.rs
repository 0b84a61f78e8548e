//! berth-runc's `--log FILE --log-format json`: runc's JSON lines, one [`Record`] per
//! event, so containerd's runc shim (which reads the last `"level":"error"` line's `msg`
//! after a failed command) and berth-shim read berth-runc's failures alike:
//!
//! ```text
//! {"level":"error","msg":"unable to start container process: exec: \"x\": executable file not found in $PATH","time":"2026-01-01T00:00:00.000000000Z","kind":"executable-not-found","errno":2}
//! ```
//!
//! `level`, `msg` and `time` are runc's; every other event field is a top-level key,
//! as logrus writes them. The failing command's last line carries berth's typed fields:
//! [`KIND_FIELD`] (an [`crate::ErrorKind::as_str`] name) and, for an exec failure,
//! [`ERRNO_FIELD`].

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The record field naming the error's [`crate::ErrorKind`].
pub const KIND_FIELD: &str = "kind";
/// The record field holding an exec failure's errno.
pub const ERRNO_FIELD: &str = "errno";

/// One log line, as written and as a reader decodes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `debug`, `info`, `warning` or `error` (logrus's names).
    pub level: String,
    /// The event's message.
    pub msg: String,
    /// RFC 3339 UTC.
    #[serde(default)]
    pub time: String,
    /// berth: the error kind of a failed command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// berth: the errno of an exec failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// Any other field of the event.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Record {
    /// True for runc's error level.
    pub fn is_error(&self) -> bool {
        self.level == "error"
    }
}

/// logrus's level names.
fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warning",
        tracing::Level::ERROR => "error",
    }
}

#[derive(Default)]
struct Collect {
    msg: String,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Collect {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            match value {
                serde_json::Value::String(s) => self.msg = s,
                other => self.msg = other.to_string(),
            }
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Collect {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, s.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
}

/// The `tracing` formatter writing [`Record`] lines.
#[derive(Debug, Default, Clone, Copy)]
pub struct RuncJson;

impl<S, N> FormatEvent<S, N> for RuncJson
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut c = Collect::default();
        event.record(&mut c);
        let mut fields = c.fields;
        let kind = match fields.remove(KIND_FIELD) {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        let errno = fields
            .remove(ERRNO_FIELD)
            .and_then(|v| v.as_i64())
            .and_then(|v| i32::try_from(v).ok());
        let rec = Record {
            level: level_name(event.metadata().level()).to_owned(),
            msg: c.msg,
            time: crate::state::now_rfc3339(),
            kind,
            errno,
            fields,
        };
        let line = serde_json::to_string(&rec).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buf").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_are_runc_json_lines_with_typed_fields() {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .event_format(RuncJson)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::info!(id = "c1", pid = 7, "created");
            tracing::error!(
                kind = "executable-not-found",
                errno = 2,
                "exec: \"x\": gone"
            );
        });
        let text = String::from_utf8(buf.0.lock().expect("buf").clone()).expect("utf8");
        let lines: Vec<Record> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a record per line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            (lines[0].level.as_str(), lines[0].msg.as_str()),
            ("info", "created")
        );
        assert_eq!(lines[0].fields["id"], "c1");
        assert_eq!(lines[0].fields["pid"], 7);
        assert!(!lines[0].is_error() && lines[0].kind.is_none());
        assert!(lines[1].is_error());
        assert_eq!(lines[1].msg, "exec: \"x\": gone");
        assert_eq!(lines[1].kind.as_deref(), Some("executable-not-found"));
        assert_eq!(lines[1].errno, Some(2));
        assert!(lines[1].time.ends_with('Z'), "{}", lines[1].time);
        // runc's own shape (what containerd's reader decodes) is a subset.
        let v: serde_json::Value =
            serde_json::from_str(text.lines().nth(1).expect("line")).expect("json");
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "exec: \"x\": gone");
    }
}
