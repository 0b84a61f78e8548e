//! Output helpers: aligned tables, JSON, sizes and ages.

use std::io::Write;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::cli::Format;

/// A table printed with columns padded to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The rendered text: three spaces between columns, no trailing spaces.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                line.push_str(cell);
                if i + 1 < n {
                    line.push_str(&" ".repeat(width - cell.chars().count() + 3));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints to stdout.
    pub fn print(&self) {
        print_text(&self.render());
    }
}

/// Writes text to stdout, ignoring a closed pipe (`| head`).
pub fn print_text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &Value) {
    print_text(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    ));
}

/// Prints `rows` as a table or a JSON array of objects.
pub fn emit(format: Format, table: Table, json: Vec<Value>) {
    match format {
        Format::Table => table.print(),
        Format::Json => print_json(&Value::Array(json)),
    }
}

/// Decimal sizes as docker prints them: `0B`, `999B`, `1.5kB`, `12.3MB`.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes.max(0) as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{}{}", v as i64, UNITS[0])
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .chars()
            .take(5)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

/// `5 seconds ago`, `3 minutes ago`, `2 days ago`.
pub fn ago(since: Duration) -> String {
    let s = since.as_secs();
    let (n, unit) = match s {
        0..60 => (s, "second"),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        86_400..604_800 => (s / 86_400, "day"),
        604_800..2_592_000 => (s / 604_800, "week"),
        2_592_000..31_536_000 => (s / 2_592_000, "month"),
        _ => (s / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// `ago()` of a protobuf timestamp, `-` when absent.
pub fn ts_ago(ts: Option<&prost_types::Timestamp>) -> String {
    let Some(ts) = ts else {
        return "-".to_string();
    };
    let Ok(secs) = u64::try_from(ts.seconds) else {
        return "-".to_string();
    };
    let then = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    match SystemTime::now().duration_since(then) {
        Ok(d) => ago(d),
        Err(_) => "just now".to_string(),
    }
}

/// `k=v,k=v` of a label map, sorted.
pub fn labels_text(labels: &std::collections::HashMap<String, String>) -> String {
    let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    l.sort();
    l.join(",")
}

/// The first 12 hex digits of a digest, without the algorithm.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["NAME", "SIZE", "LABELS"]);
        t.row(vec!["busybox:latest".into(), "1.2MB".into(), String::new()]);
        t.row(vec!["a".into(), "100B".into(), "x=y".into()]);
        assert_eq!(
            t.render(),
            "NAME             SIZE    LABELS\n\
             busybox:latest   1.2MB\n\
             a                100B    x=y\n"
        );
    }

    #[test]
    fn sizes_are_decimal_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1500), "1.5kB");
        assert_eq!(human_size(4_261_376), "4.261MB");
        assert_eq!(human_size(12_300_000_000), "12.3GB");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(Duration::from_secs(1)), "1 second ago");
        assert_eq!(ago(Duration::from_secs(125)), "2 minutes ago");
        assert_eq!(ago(Duration::from_secs(3 * 86_400)), "3 days ago");
        assert_eq!(ts_ago(None), "-");
    }

    #[test]
    fn digests_shorten() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
    }
}
