//! `logs`: a container's output, from the log file its shim keeps.
//!
//! berth-shim writes the init's output of a detached container (null or
//! FIFO stdio) to `<state>/tasks/<ns>/<id>/container.log` as JSON lines
//! (`{"time":…,"stream":"stdout"|"stderr","log":"text\n"}`, docker's
//! json-file shape), rotating to `container.log.1` at 1 MiB.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_api::containerd::v1::types::Status;
use serde::Deserialize;

use super::exit::CliError;
use super::{CmdResult, Ctx};

/// `logs` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing new output until the container stops
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Prefix each line with its RFC 3339 time
    #[arg(short, long)]
    pub timestamps: bool,
    /// Container
    pub container: String,
}

/// One record of container.log.
#[derive(Debug, Deserialize, PartialEq)]
pub struct Record {
    /// RFC 3339 time.
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text (with its newline unless partial).
    pub log: String,
}

/// The log file of container `id`.
pub fn log_path(state: &Path, namespace: &str, id: &str) -> PathBuf {
    state
        .join("tasks")
        .join(namespace)
        .join(id)
        .join("container.log")
}

/// Parses JSON lines, skipping ones that do not parse (a torn last line).
pub fn parse_records(text: &str) -> Vec<Record> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn emit(rec: &Record, timestamps: bool) {
    let text = if timestamps {
        format!("{} {}", rec.time, rec.log)
    } else {
        rec.log.clone()
    };
    let _ = if rec.stream == "stderr" {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
}

/// `berthctl logs`.
pub async fn run(ctx: &Ctx, args: Args) -> CmdResult {
    let client = ctx.client().await?;
    // The container must exist; its record gives a clear NotFound otherwise.
    client.get_container(&args.container).await?;
    let path = log_path(&ctx.state, &ctx.namespace, &args.container);
    let rotated = path.with_extension("log.1");
    let mut text = std::fs::read_to_string(&rotated).unwrap_or_default();
    let current = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if args.follow {
                String::new()
            } else {
                return Err(CliError::usage(format!(
                    "container {} has no log at {} (only detached containers' output is kept)",
                    args.container,
                    path.display()
                )));
            }
        }
        Err(e) => {
            return Err(CliError::usage(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    text.push_str(&current);
    let records = parse_records(&text);
    let skip = args.tail.map_or(0, |n| records.len().saturating_sub(n));
    records[skip..]
        .iter()
        .for_each(|r| emit(r, args.timestamps));
    if !args.follow {
        return Ok(0);
    }
    follow(&client, &args, &path, current.len() as u64).await
}

async fn follow(
    client: &berth_client::Client,
    args: &Args,
    path: &Path,
    mut offset: u64,
) -> CmdResult {
    let mut ticks = 0u32;
    let mut stopping = false;
    loop {
        if let Ok(mut f) = std::fs::File::open(path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0; // rotated
            }
            if f.seek(SeekFrom::Start(offset)).is_ok() {
                let mut reader = BufReader::new(f);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if !line.ends_with('\n') {
                        break; // torn: read it whole next round
                    }
                    offset += line.len() as u64;
                    if let Ok(rec) = serde_json::from_str::<Record>(&line) {
                        emit(&rec, args.timestamps);
                    }
                    line.clear();
                }
            }
        }
        if stopping {
            return Ok(0);
        }
        ticks += 1;
        if ticks.is_multiple_of(5) {
            let task = client.get_task(&args.container).await?;
            let running = task.is_some_and(|p| {
                matches!(
                    Status::try_from(p.status),
                    Ok(Status::Running | Status::Paused | Status::Pausing | Status::Created)
                )
            });
            // One more read after the task ended, to catch its last lines.
            stopping = !running;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_torn_lines_are_skipped() {
        let text = "{\"time\":\"2026-11-30T03:41:19.1Z\",\"stream\":\"stdout\",\"log\":\"out\\n\"}\n\
                    {\"time\":\"2026-11-30T03:41:20Z\",\"stream\":\"stderr\",\"log\":\"err\\n\"}\n\
                    {\"time\":\"2026-11-30";
        let r = parse_records(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].log, "out\n");
        assert_eq!(r[1].stream, "stderr");
    }

    #[test]
    fn log_path_follows_the_bundle_layout() {
        assert_eq!(
            log_path(Path::new("/run/berth"), "default", "web"),
            Path::new("/run/berth/tasks/default/web/container.log")
        );
    }
}
