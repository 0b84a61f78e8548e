//! `ready_probe`: how long a containerd-API daemon (berthd or containerd) takes from its
//! start until `Tasks.List` shows N tasks, all RUNNING. A bench helper (bench/run.sh).
//!
//! ```text
//! ready_probe --socket SOCK --namespace NS --count N [--timeout-ms MS] [--log FILE] [--stay] -- DAEMON ARGS...
//!     spawns DAEMON ARGS (t0 = just before the spawn), dials SOCK as soon as it accepts,
//!     calls containerd.services.tasks.v1.Tasks/List back to back until N tasks are
//!     listed and all are RUNNING; prints one line and leaves the daemon running:
//!     pid=P ready_ms=T connect_ms=C lists=L
//!     With --stay the probe then stays the daemon's parent and exits once it has
//!     reaped it: a caller that waits for the probe knows every thread of the daemon is
//!     gone (and its locks released), which a zombie's /proc entry does not tell.
//! ready_probe --socket SOCK --namespace NS --count N [--repeat R]
//!     against a daemon already serving: R timed List calls on one connection, then one
//!     on a fresh connection; prints list_ms=<median> fresh_ms=<ms>
//! ```
//!
//! The same gRPC call and readiness rule for both daemons; the daemon's stdout and
//! stderr are appended to `--log` (default /dev/null). Exit 1 on timeout or when the
//! daemon exits first.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use berth_api::containerd::services::tasks::v1::ListTasksRequest;
use berth_api::containerd::services::tasks::v1::tasks_client::TasksClient;
use berth_api::containerd::v1::types::Status;
use tonic::transport::Channel;

/// Pause between two dial attempts while the socket is not accepting yet.
const DIAL_PAUSE: Duration = Duration::from_micros(500);

struct Opts {
    socket: PathBuf,
    namespace: String,
    count: usize,
    timeout: Duration,
    log: PathBuf,
    repeat: usize,
    stay: bool,
    daemon: Vec<String>,
}

fn parse() -> anyhow::Result<Opts> {
    let mut o = Opts {
        socket: PathBuf::new(),
        namespace: "default".into(),
        count: 0,
        timeout: Duration::from_secs(30),
        log: "/dev/null".into(),
        repeat: 0,
        stay: false,
        daemon: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--socket" => o.socket = val()?.into(),
            "--namespace" => o.namespace = val()?,
            "--count" => o.count = val()?.parse().context("--count")?,
            "--timeout-ms" => o.timeout = Duration::from_millis(val()?.parse()?),
            "--log" => o.log = val()?.into(),
            "--repeat" => o.repeat = val()?.parse().context("--repeat")?,
            "--stay" => o.stay = true,
            "--" => {
                o.daemon = args.collect();
                break;
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    if o.socket.as_os_str().is_empty() {
        bail!("--socket is required");
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let o = parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    if o.daemon.is_empty() {
        rt.block_on(warm(&o))
    } else {
        rt.block_on(cold(&o))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn dial(socket: &std::path::Path) -> Option<Channel> {
    berth_api::transport::connect_unix(berth_api::transport::unix_endpoint(), socket)
        .await
        .ok()
}

/// Number of tasks listed and whether all of them are RUNNING; `None` when the call failed.
async fn list(client: &mut TasksClient<Channel>, ns: &str) -> Option<(usize, bool)> {
    let mut req = tonic::Request::new(ListTasksRequest::default());
    req.metadata_mut()
        .insert(berth_api::metadata::NAMESPACE_HEADER, ns.parse().ok()?);
    let tasks = client.list(req).await.ok()?.into_inner().tasks;
    let running = tasks.iter().all(|t| t.status == Status::Running as i32);
    Some((tasks.len(), running))
}

fn exited(child: &mut Child) -> bool {
    !matches!(child.try_wait(), Ok(None))
}

async fn cold(o: &Opts) -> anyhow::Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&o.log)
        .with_context(|| format!("open {}", o.log.display()))?;
    let t0 = Instant::now();
    let mut child = Command::new(&o.daemon[0])
        .args(&o.daemon[1..])
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("dup log")?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("spawn {}", o.daemon[0]))?;
    let pid = child.id();
    let deadline = t0 + o.timeout;
    let channel = loop {
        if let Some(c) = dial(&o.socket).await {
            break c;
        }
        if exited(&mut child) {
            bail!("daemon (pid {pid}) exited before accepting");
        }
        if Instant::now() > deadline {
            bail!("daemon (pid {pid}) did not accept within {:?}", o.timeout);
        }
        tokio::time::sleep(DIAL_PAUSE).await;
    };
    let connected = t0.elapsed();
    let mut client = TasksClient::new(channel);
    let mut lists = 0u32;
    loop {
        lists += 1;
        if let Some((n, true)) = list(&mut client, &o.namespace).await
            && n >= o.count
        {
            break;
        }
        if exited(&mut child) {
            bail!(
                "daemon (pid {pid}) exited before listing {} RUNNING",
                o.count
            );
        }
        if Instant::now() > deadline {
            bail!(
                "daemon (pid {pid}): not {} RUNNING within {:?}",
                o.count,
                o.timeout
            );
        }
    }
    let ready = t0.elapsed();
    println!(
        "pid={pid} ready_ms={:.3} connect_ms={:.3} lists={lists}",
        ms(ready),
        ms(connected)
    );
    if o.stay {
        use std::io::Write;
        std::io::stdout().flush().context("flush stdout")?;
        child.wait().context("wait for the daemon")?;
    }
    Ok(())
}

async fn warm(o: &Opts) -> anyhow::Result<()> {
    let channel = dial(&o.socket)
        .await
        .with_context(|| format!("connect {}", o.socket.display()))?;
    let mut client = TasksClient::new(channel);
    let mut samples = Vec::new();
    for _ in 0..o.repeat.max(1) {
        let t = Instant::now();
        let (n, running) = list(&mut client, &o.namespace)
            .await
            .context("Tasks.List failed")?;
        samples.push(ms(t.elapsed()));
        if n < o.count || !running {
            bail!(
                "listed {n} tasks (all running: {running}), want {}",
                o.count
            );
        }
    }
    samples.sort_by(f64::total_cmp);
    let t = Instant::now();
    let mut fresh = TasksClient::new(dial(&o.socket).await.context("reconnect")?);
    list(&mut fresh, &o.namespace)
        .await
        .context("Tasks.List failed")?;
    println!(
        "list_ms={:.3} fresh_ms={:.3}",
        samples[samples.len() / 2],
        ms(t.elapsed())
    );
    Ok(())
}
