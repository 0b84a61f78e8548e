//! `container.log`: the init's output kept in the bundle for `berthctl logs`.
//!
//! Format: JSON lines, one record per output line,
//! `{"time":"2026-11-30T03:41:19.123456789Z","stream":"stdout","log":"out\n"}`
//! (docker's json-file shape). A line longer than [`MAX_LINE`] is split; a
//! record whose `log` lacks the trailing newline is a partial line.
//!
//! Bounded: when `container.log` reaches [`CAP`] bytes it is renamed to
//! `container.log.1` (replacing the previous one) and a new file is started,
//! so the two files never hold more than 2 × [`CAP`] plus one record.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Size at which the log is rotated.
pub const CAP: u64 = 1 << 20;
/// Longest line kept in one record.
pub const MAX_LINE: usize = 16 << 10;

/// The writer of one container's log (shared by its stdout and stderr copies).
pub struct ContainerLog {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    partial: [Vec<u8>; 2],
}

/// Which stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (also a terminal's output).
    Stdout = 0,
    /// Standard error.
    Stderr = 1,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl ContainerLog {
    /// Appends to `path` (created 0640 if missing).
    pub fn open(path: &Path) -> std::io::Result<ContainerLog> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(ContainerLog {
            path: path.to_owned(),
            file: Some(file),
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Records `data` from `stream`: complete lines at once, the rest when
    /// its line ends (or grows past [`MAX_LINE`]).
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let mut rest = data;
        while !rest.is_empty() {
            let buf = &mut self.partial[stream as usize];
            match rest.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    buf.extend_from_slice(&rest[..=i]);
                    rest = &rest[i + 1..];
                    let line = std::mem::take(buf);
                    self.record(stream, &line);
                }
                None => {
                    buf.extend_from_slice(rest);
                    rest = &[];
                    if buf.len() >= MAX_LINE {
                        let line = std::mem::take(buf);
                        self.record(stream, &line);
                    }
                }
            }
        }
    }

    /// Writes out partial lines (at the end of the output).
    pub fn flush(&mut self, stream: Stream) {
        let line = std::mem::take(&mut self.partial[stream as usize]);
        if !line.is_empty() {
            self.record(stream, &line);
        }
    }

    fn record(&mut self, stream: Stream, line: &[u8]) {
        let rec = serde_json::json!({
            "time": rfc3339(SystemTime::now()),
            "stream": stream.name(),
            "log": String::from_utf8_lossy(line),
        });
        let mut bytes = rec.to_string().into_bytes();
        bytes.push(b'\n');
        if self.size + bytes.len() as u64 > CAP && self.size > 0 {
            self.rotate();
        }
        let Some(f) = self.file.as_mut() else { return };
        match f.write_all(&bytes) {
            Ok(()) => self.size += bytes.len() as u64,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "container log write failed, log disabled");
                self.file = None;
            }
        }
    }

    fn rotate(&mut self) {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        self.file = None;
        let reopened = std::fs::rename(&self.path, &old).and_then(|()| open_append(&self.path));
        match reopened {
            Ok(f) => {
                self.file = Some(f);
                self.size = 0;
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "container log rotation failed, log disabled");
            }
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// RFC 3339 UTC with nanoseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn records(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    #[test]
    fn formats_known_instants() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_796_010_079, 5);
        assert_eq!(rfc3339(t), "2026-11-30T03:41:19.000000005Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn splits_lines_per_stream_and_flushes_partials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("container.log");
        let mut log = ContainerLog::open(&p).expect("open");
        log.write(Stream::Stdout, b"a\nb");
        log.write(Stream::Stderr, b"err\n");
        log.write(Stream::Stdout, b"c\nd");
        log.flush(Stream::Stdout);
        let r = records(&p);
        let got: Vec<(String, String)> = r
            .iter()
            .map(|v| {
                (
                    v["stream"].as_str().expect("stream").to_owned(),
                    v["log"].as_str().expect("log").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("stdout".into(), "a\n".into()),
                ("stderr".into(), "err\n".into()),
                ("stdout".into(), "bc\n".into()),
                ("stdout".into(), "d".into()),
            ]
        );
        assert!(r[0]["time"].as_str().expect("time").ends_with('Z'));
    }

    #[test]
    fn rotation_bounds_the_total_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("container.log");
        let mut log = ContainerLog::open(&p).expect("open");
        let line = vec![b'x'; 1000];
        for _ in 0..(3 * CAP / 1000) {
            log.write(Stream::Stdout, &line);
            log.write(Stream::Stdout, b"\n");
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let old = dir.path().join("container.log.1");
        assert!(size(&p) <= CAP, "current {}", size(&p));
        assert!(
            size(&old) <= CAP && size(&old) > CAP / 2,
            "old {}",
            size(&old)
        );
        // Long lines are split at MAX_LINE.
        log.write(Stream::Stderr, &vec![b'y'; MAX_LINE + 10]);
        let last = records(&p).pop().expect("record");
        assert_eq!(last["log"].as_str().expect("log").len(), MAX_LINE + 10);
    }
}
