//! Container verbs: `ps`, `kill`, `stop`, `start`, `rm`, `pause`,
//! `unpause`, `stats`, `top`, `inspect`.

use std::io::IsTerminal;
use std::str::FromStr;
use std::time::Duration;

use berth_api::containerd::services::containers::v1::Container;
use berth_api::containerd::types::Metric;
use berth_api::containerd::v1::types::{Process, Status};
use berth_api::io::containerd::cgroups::{v1 as cg1, v2 as cg2};
use berth_client::container::container_spec;
use berth_client::events::timestamp_text;
use berth_client::image::STOP_SIGNAL_LABEL;
use berth_client::task::{Stdio, status_name};
use berth_client::{Client, Error};
use serde_json::{Value, json};

use super::exit::{CliError, sentence, start_failure_code};
use super::output::{Table, emit, human_size, print_json, print_text, ts_ago};
use super::{CmdResult, Ctx};

/// `ps` arguments.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones)
    #[arg(short, long)]
    pub all: bool,
    /// Print IDs only
    #[arg(short, long)]
    pub quiet: bool,
}

/// Container IDs.
#[derive(Debug, clap::Args)]
pub struct IdsArgs {
    /// Containers
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `kill` arguments.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal name or number
    #[arg(short, long, default_value = "SIGKILL")]
    pub signal: String,
    /// Containers
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `stop` arguments.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL
    #[arg(short, long, default_value_t = 10)]
    pub time: u64,
    /// Containers
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `rm` arguments.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Containers
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `stats` arguments.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print one sample and exit (default when stdout is not a terminal)
    #[arg(long)]
    pub no_stream: bool,
    /// Containers (default: all running)
    pub ids: Vec<String>,
}

/// `top` arguments.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// Container
    pub id: String,
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> Result<u32, CliError> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name)
        .map(|sig| sig as u32)
        .map_err(|_| CliError::usage(format!("unknown signal {s:?}")))
}

fn is_live(p: &Process) -> bool {
    matches!(
        Status::try_from(p.status),
        Ok(Status::Running | Status::Paused | Status::Pausing)
    )
}

/// How `ps` shows a container's state.
pub fn status_text(task: Option<&Process>) -> String {
    match task {
        None => "created".to_string(),
        Some(p) if p.status == Status::Stopped as i32 => format!("exited ({})", p.exit_status),
        Some(p) => status_name(p.status).to_string(),
    }
}

fn command_text(c: &Container) -> String {
    let args: Vec<String> = container_spec(c)
        .ok()
        .and_then(|s| s["process"]["args"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let full = args.join(" ");
    if full.chars().count() > 20 {
        format!("\"{}…\"", full.chars().take(19).collect::<String>())
    } else {
        format!("\"{full}\"")
    }
}

/// `berthctl ps`.
pub async fn ps(ctx: &Ctx, args: PsArgs) -> CmdResult {
    let client = ctx.client().await?;
    let mut containers = client.list_containers(vec![]).await?;
    containers.sort_by(|a, b| {
        let t = |c: &Container| c.created_at.as_ref().map(|t| (t.seconds, t.nanos));
        t(b).cmp(&t(a))
    });
    let tasks = client.list_tasks().await?;
    let mut t = Table::new(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS"]);
    let mut j = Vec::new();
    for c in &containers {
        let task = tasks
            .iter()
            .find(|p| p.id == c.id || p.container_id == c.id);
        if !args.all && !task.is_some_and(is_live) {
            continue;
        }
        if args.quiet {
            println!("{}", c.id);
            continue;
        }
        t.row(vec![
            c.id.clone(),
            c.image.clone(),
            command_text(c),
            ts_ago(c.created_at.as_ref()),
            status_text(task),
        ]);
        j.push(json!({
            "id": c.id, "image": c.image, "command": command_text(c),
            "created_at": timestamp_text(c.created_at.as_ref()),
            "status": status_text(task),
            "pid": task.map(|p| p.pid),
            "labels": c.labels,
        }));
    }
    if !args.quiet {
        emit(ctx.format, t, j);
    }
    Ok(0)
}

/// `berthctl kill`.
pub async fn kill(ctx: &Ctx, args: KillArgs) -> CmdResult {
    let signal = parse_signal(&args.signal)?;
    let client = ctx.client().await?;
    for id in &args.ids {
        client.kill_task(id, "", signal, false).await?;
        println!("{id}");
    }
    Ok(0)
}

async fn stop_one(client: &Client, id: &str, timeout: Duration) -> Result<(), CliError> {
    let container = client.get_container(id).await?;
    let Some(task) = client.get_task(id).await? else {
        return Ok(());
    };
    if !is_live(&task) {
        return Ok(());
    }
    if task.status == Status::Paused as i32 {
        client.resume_task(id).await?;
    }
    let stop = container
        .labels
        .get(STOP_SIGNAL_LABEL)
        .map_or(Ok(libc::SIGTERM as u32), |s| parse_signal(s))?;
    client.kill_task(id, "", stop, false).await?;
    let wait = client.wait_task(id, "");
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => {
            r?;
        }
        Err(_) => {
            client.kill_task(id, "", libc::SIGKILL as u32, true).await?;
            client.wait_task(id, "").await?;
        }
    }
    Ok(())
}

/// `berthctl stop`.
pub async fn stop(ctx: &Ctx, args: StopArgs) -> CmdResult {
    let client = ctx.client().await?;
    for id in &args.ids {
        stop_one(&client, id, Duration::from_secs(args.time)).await?;
        println!("{id}");
    }
    Ok(0)
}

/// `berthctl start`: a new detached task (output to the container log).
pub async fn start(ctx: &Ctx, args: IdsArgs) -> CmdResult {
    let client = ctx.client().await?;
    for id in &args.ids {
        client.get_container(id).await?;
        if let Some(task) = client.get_task(id).await? {
            if is_live(&task) {
                return Err(CliError::usage(format!(
                    "container {id} is already running"
                )));
            }
            client.delete_task(id).await?;
            remove_kept_fifos(&task);
        }
        let invoke = |e: Error| CliError {
            code: start_failure_code(&e),
            message: sentence(&e),
        };
        client.create_task(id, Stdio::Null).await.map_err(invoke)?;
        if let Err(e) = client.start_task(id, "").await {
            let _ = client.delete_task(id).await;
            return Err(invoke(e));
        }
        println!("{id}");
    }
    Ok(0)
}

/// `berthctl rm`.
pub async fn rm(ctx: &Ctx, args: RmArgs) -> CmdResult {
    let client = ctx.client().await?;
    for id in &args.ids {
        client.get_container(id).await?;
        if let Some(task) = client.get_task(id).await? {
            if is_live(&task) {
                if !args.force {
                    return Err(CliError::usage(format!(
                        "container {id} is running: stop it first or use rm -f"
                    )));
                }
                if task.status != Status::Running as i32 {
                    let _ = client.resume_task(id).await;
                }
                client.kill_task(id, "", libc::SIGKILL as u32, true).await?;
                client.wait_task(id, "").await?;
            }
            match client.delete_task(id).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            remove_kept_fifos(&task);
        }
        client.delete_container(id).await?;
        println!("{id}");
    }
    Ok(0)
}

/// Removes the stdio FIFOs `run -d -i/-t` kept for `attach`, once the
/// task that used them is deleted.
fn remove_kept_fifos(task: &Process) {
    if !berth_client::cio::is_log_target(&task.stdout)
        && berth_client::cio::remove_kept(&berth_client::cio::default_base(), &task.stdout)
    {
        tracing::debug!(stdout = %task.stdout, "kept fifos removed");
    }
}

/// `berthctl pause` / `unpause`.
pub async fn pause(ctx: &Ctx, args: IdsArgs, freeze: bool) -> CmdResult {
    let client = ctx.client().await?;
    for id in &args.ids {
        if freeze {
            client.pause_task(id).await?;
        } else {
            client.resume_task(id).await?;
        }
        println!("{id}");
    }
    Ok(0)
}

/// One sample of a container's usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Total CPU time in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use (bytes).
    pub mem: u64,
    /// Memory limit (bytes; 0 or huge = none).
    pub mem_limit: u64,
    /// Number of tasks.
    pub pids: u64,
}

/// Decodes a metric's v1 or v2 cgroup payload.
pub fn sample(metric: &Metric) -> Option<Sample> {
    let data = metric.data.as_ref()?;
    if berth_api::any::is::<cg1::Metrics>(data) {
        let m: cg1::Metrics = berth_api::any::unpack(data).ok()?;
        let mem = m.memory.unwrap_or_default();
        let usage = mem.usage.unwrap_or_default();
        Some(Sample {
            cpu_ns: m.cpu.and_then(|c| c.usage).map_or(0, |u| u.total),
            mem: usage.usage.saturating_sub(mem.total_inactive_file),
            mem_limit: usage.limit,
            pids: m.pids.map_or(0, |p| p.current),
        })
    } else if berth_api::any::is::<cg2::Metrics>(data) {
        let m: cg2::Metrics = berth_api::any::unpack(data).ok()?;
        let mem = m.memory.unwrap_or_default();
        Some(Sample {
            cpu_ns: m.cpu.map_or(0, |c| c.usage_usec * 1000),
            mem: mem.usage,
            mem_limit: mem.usage_limit,
            pids: m.pids.map_or(0, |p| p.current),
        })
    } else {
        None
    }
}

/// CPU percent between two samples `elapsed` apart (100% = one CPU).
pub fn cpu_percent(before: &Sample, after: &Sample, elapsed: Duration) -> f64 {
    let ns = elapsed.as_nanos() as f64;
    if ns <= 0.0 {
        return 0.0;
    }
    after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / ns * 100.0
}

async fn samples(client: &Client, ids: &[String]) -> Result<Vec<(String, Sample)>, CliError> {
    let filters = ids.iter().map(|id| format!("id=={id}")).collect();
    let metrics = client.task_metrics(filters).await?;
    Ok(metrics
        .iter()
        .filter_map(|m| sample(m).map(|s| (m.id.clone(), s)))
        .collect())
}

fn stats_table(
    before: &[(String, Sample)],
    after: &[(String, Sample)],
    elapsed: Duration,
) -> (Table, Vec<Value>) {
    let mut t = Table::new(&["CONTAINER", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]);
    let mut j = Vec::new();
    for (id, s) in after {
        let prev = before.iter().find(|(i, _)| i == id).map(|(_, s)| s);
        let cpu = prev.map_or(0.0, |p| cpu_percent(p, s, elapsed));
        let limited = s.mem_limit > 0 && s.mem_limit < (1 << 62);
        let mem_pct = if limited {
            s.mem as f64 / s.mem_limit as f64 * 100.0
        } else {
            0.0
        };
        let limit = if limited {
            human_size(s.mem_limit as i64)
        } else {
            "unlimited".to_string()
        };
        t.row(vec![
            id.clone(),
            format!("{cpu:.2}%"),
            format!("{} / {limit}", human_size(s.mem as i64)),
            format!("{mem_pct:.2}%"),
            s.pids.to_string(),
        ]);
        j.push(json!({"id": id, "cpu_percent": cpu, "memory_usage": s.mem,
                      "memory_limit": s.mem_limit, "memory_percent": mem_pct, "pids": s.pids}));
    }
    (t, j)
}

/// `berthctl stats`: one table (two samples half a second apart for CPU %),
/// or a live refresh every second on a terminal.
pub async fn stats(ctx: &Ctx, args: StatsArgs) -> CmdResult {
    let client = ctx.client().await?;
    let ids = if args.ids.is_empty() {
        client
            .list_tasks()
            .await?
            .into_iter()
            .filter(is_live)
            .map(|p| {
                if p.container_id.is_empty() {
                    p.id
                } else {
                    p.container_id
                }
            })
            .collect()
    } else {
        args.ids.clone()
    };
    let live = !args.no_stream && std::io::stdout().is_terminal();
    let interval = if live {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(500)
    };
    let mut before = samples(&client, &ids).await?;
    loop {
        tokio::time::sleep(interval).await;
        let after = samples(&client, &ids).await?;
        let (t, j) = stats_table(&before, &after, interval);
        if !live {
            emit(ctx.format, t, j);
            return Ok(0);
        }
        print_text("\x1b[2J\x1b[H");
        emit(ctx.format, t, j);
        before = after;
    }
}

/// `berthctl top`: the container's processes as the host sees them.
pub async fn top(ctx: &Ctx, args: TopArgs) -> CmdResult {
    let client = ctx.client().await?;
    let procs = client.task_pids(&args.id).await?;
    let mut t = Table::new(&["PID", "UID", "CMD"]);
    let mut j = Vec::new();
    for p in &procs {
        let cmd = std::fs::read(format!("/proc/{}/cmdline", p.pid))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let uid = std::fs::read_to_string(format!("/proc/{}/status", p.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next().map(str::to_string))
            })
            .unwrap_or_else(|| "-".to_string());
        t.row(vec![p.pid.to_string(), uid.clone(), cmd.clone()]);
        j.push(json!({"pid": p.pid, "uid": uid, "cmd": cmd}));
    }
    emit(ctx.format, t, j);
    Ok(0)
}

/// `berthctl inspect`: always JSON.
pub async fn inspect(ctx: &Ctx, args: IdsArgs) -> CmdResult {
    let client = ctx.client().await?;
    let mut out = Vec::new();
    for id in &args.ids {
        let c = client.get_container(id).await?;
        let task = client.get_task(id).await?;
        let runtime = c.runtime.clone().unwrap_or_default();
        out.push(json!({
            "id": c.id,
            "image": c.image,
            "labels": c.labels,
            "runtime": runtime.name,
            "snapshotter": c.snapshotter,
            "snapshot_key": c.snapshot_key,
            "created_at": timestamp_text(c.created_at.as_ref()),
            "updated_at": timestamp_text(c.updated_at.as_ref()),
            "spec": container_spec(&c).unwrap_or(Value::Null),
            "task": task.map(|p| json!({
                "pid": p.pid, "status": status_name(p.status), "exit_status": p.exit_status,
                "exited_at": timestamp_text(p.exited_at.as_ref()),
                "stdin": p.stdin, "stdout": p.stdout, "stderr": p.stderr, "terminal": p.terminal,
            })),
        }));
    }
    print_json(&Value::Array(out));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("9").expect("number"), 9);
        assert_eq!(parse_signal("TERM").expect("short"), libc::SIGTERM as u32);
        assert_eq!(parse_signal("sigkill").expect("long"), libc::SIGKILL as u32);
        assert_eq!(parse_signal("bogus").expect_err("unknown").code, 125);
    }

    #[test]
    fn ps_status_texts() {
        let stopped = Process {
            status: Status::Stopped as i32,
            exit_status: 3,
            ..Process::default()
        };
        assert_eq!(status_text(Some(&stopped)), "exited (3)");
        let running = Process {
            status: Status::Running as i32,
            ..Process::default()
        };
        assert_eq!(status_text(Some(&running)), "running");
        assert_eq!(status_text(None), "created");
        assert!(is_live(&running) && !is_live(&stopped));
    }

    #[test]
    fn v1_metrics_become_samples_and_cpu_percent() {
        let m = cg1::Metrics {
            pids: Some(cg1::PidsStat {
                current: 3,
                limit: 0,
            }),
            cpu: Some(cg1::CpuStat {
                usage: Some(cg1::CpuUsage {
                    total: 2_000_000_000,
                    ..Default::default()
                }),
                throttling: None,
            }),
            memory: Some(cg1::MemoryStat {
                total_inactive_file: 100,
                usage: Some(cg1::MemoryEntry {
                    limit: 1000,
                    usage: 600,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let metric = Metric {
            timestamp: None,
            id: "c1".into(),
            data: Some(berth_api::any::pack(&m)),
        };
        let s = sample(&metric).expect("v1");
        assert_eq!(
            s,
            Sample {
                cpu_ns: 2_000_000_000,
                mem: 500,
                mem_limit: 1000,
                pids: 3
            }
        );
        let before = Sample {
            cpu_ns: 1_500_000_000,
            ..s.clone()
        };
        let pct = cpu_percent(&before, &s, Duration::from_secs(1));
        assert!((pct - 50.0).abs() < 1e-9, "{pct}");
        let (t, j) = stats_table(
            &[("c1".into(), before)],
            &[("c1".into(), s)],
            Duration::from_secs(1),
        );
        assert!(t.render().contains("50.00%"), "{}", t.render());
        assert_eq!(j[0]["memory_percent"], 50.0);
    }
}
