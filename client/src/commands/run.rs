//! `run`: create a container from an image and run it, in the foreground
//! (exit status of the container) or detached (`-d`, output kept in the
//! container log by the shim).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use berth_client::cio::{FifoSet, default_base};
use berth_client::container::NewContainer;
use berth_client::image::ResolvedImage;
use berth_client::spec::{ExtraMount, Network, SpecOptions};
use berth_client::task::Stdio;
use berth_client::{Client, Error};

use super::exit::{CliError, sentence, start_failure_code};
use super::foreground::{Follow, Signals, follow};
use super::{CmdResult, Ctx, key_value, tty};

/// `run` arguments.
#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container ID (output goes to
    /// the container log; with -i or -t the stdio stays open for `attach`)
    #[arg(short, long)]
    pub detach: bool,
    /// Keep stdin open and attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Container name (ID); default: random
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass the host's)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read environment variables from a file (one KEY=VALUE per line)
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Bind mount HOST:CONTAINER[:ro|rw]
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Bind mount type=bind,source=HOST,target=CONTAINER[,readonly]
    #[arg(long)]
    pub mount: Vec<String>,
    /// tmpfs mount CONTAINER[:OPTIONS]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short, long, value_parser = parse_bytes)]
    pub memory: Option<i64>,
    /// CPU limit in CPUs (e.g. 1.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Limit on the number of processes
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Network: none (loopback only) or host
    #[arg(long, default_value = "none", value_parser = ["none", "host"])]
    pub net: String,
    /// Mount the root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Add a capability (e.g. NET_ADMIN, ALL)
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a capability (e.g. NET_RAW, ALL)
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// All capabilities, all devices, no masked paths
    #[arg(long)]
    pub privileged: bool,
    /// Hostname inside the container
    #[arg(long, short = 'H')]
    pub hostname: Option<String>,
    /// Replace the image's entrypoint ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Label KEY=VALUE (repeatable)
    #[arg(short, long, value_parser = key_value)]
    pub label: Vec<(String, String)>,
    /// Image
    pub image: String,
    /// Command and arguments (default: the image's)
    pub command: Vec<String>,
}

/// Parses `512`, `64k`, `512m`, `1g` (binary multiples, as docker).
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?} (expected e.g. 512m or 1g)"))?;
    if n < 0.0 {
        return Err(format!("invalid size {s:?}"));
    }
    Ok((n * mult as f64) as i64)
}

/// `-v HOST:CONTAINER[:ro|rw]`.
pub fn parse_volume(v: &str) -> Result<ExtraMount, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, "rw"),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(format!(
                "invalid volume {v:?}: expected HOST:CONTAINER[:ro]"
            ));
        }
    };
    if !source.starts_with('/') || !destination.starts_with('/') {
        return Err(format!(
            "invalid volume {v:?}: both paths must be absolute (named volumes are not supported)"
        ));
    }
    let readonly = match mode {
        "ro" => true,
        "rw" => false,
        other => return Err(format!("invalid volume mode {other:?} in {v:?}")),
    };
    Ok(ExtraMount::Bind {
        source: source.to_string(),
        destination: destination.to_string(),
        readonly,
    })
}

/// `--mount type=bind,source=…,target=…[,readonly]`.
pub fn parse_mount(m: &str) -> Result<ExtraMount, String> {
    let (mut kind, mut source, mut target, mut readonly) = ("bind", None, None, false);
    for field in m.split(',') {
        match field.split_once('=') {
            Some(("type", t)) => kind = if t == "bind" { "bind" } else { "other" },
            Some(("source" | "src", s)) => source = Some(s.to_string()),
            Some(("target" | "destination" | "dst", d)) => target = Some(d.to_string()),
            Some(("readonly" | "ro", v)) => readonly = v != "false" && v != "0",
            None if field == "readonly" || field == "ro" => readonly = true,
            _ => return Err(format!("invalid mount field {field:?} in {m:?}")),
        }
    }
    if kind != "bind" {
        return Err(format!("invalid mount {m:?}: only type=bind is supported"));
    }
    match (source, target) {
        (Some(source), Some(destination)) => parse_volume(&format!(
            "{source}:{destination}:{}",
            if readonly { "ro" } else { "rw" }
        )),
        _ => Err(format!(
            "invalid mount {m:?}: source and target are required"
        )),
    }
}

/// `--tmpfs CONTAINER[:OPTS]`.
pub fn parse_tmpfs(t: &str) -> Result<ExtraMount, String> {
    let (dest, opts) = t.split_once(':').unwrap_or((t, ""));
    if !dest.starts_with('/') {
        return Err(format!("invalid tmpfs {t:?}: the path must be absolute"));
    }
    Ok(ExtraMount::Tmpfs {
        destination: dest.to_string(),
        options: opts
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// Env entries from `--env-file` text then `-e`; `KEY` alone takes the
/// value from `host` (and is dropped when the host has none).
pub fn collect_env(
    files: &[String],
    flags: &[String],
    host: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let lines = files
        .iter()
        .flat_map(|text| text.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string);
    lines
        .chain(flags.iter().cloned())
        .filter_map(|e| {
            if e.contains('=') {
                Some(e)
            } else {
                host(&e).map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

/// docker-style short names: `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize_ref(name: &str) -> String {
    let (first, _) = name.split_once('/').unwrap_or(("", name));
    let has_domain = first.contains('.') || first.contains(':') || first == "localhost";
    let mut full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && !full.contains('@') {
        full.push_str(":latest");
    }
    full
}

/// The image name as stored: the given name if it exists, else its
/// normalized form.
pub async fn find_image(client: &Client, name: &str) -> Result<String, Error> {
    match client.get_image(name).await {
        Ok(_) => Ok(name.to_string()),
        Err(e) if e.is_not_found() => {
            let full = normalize_ref(name);
            if full == name {
                return Err(e);
            }
            client.get_image(&full).await.map(|_| full).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// The image resolved for this host: the given name if it exists, else its
/// normalized form, else pulled (docker's behaviour for a missing image).
/// An image whose record exists but whose blobs do not resolve is an
/// error, not a pull.
async fn resolve_or_pull(
    ctx: &Ctx,
    client: &Client,
    name: &str,
) -> Result<ResolvedImage, CliError> {
    let full = normalize_ref(name);
    for candidate in [name, full.as_str()] {
        match client.resolve_image(candidate).await {
            Err(e) if e.is_not_found() => {
                if has_image(client, candidate).await? {
                    return Err(e.into());
                }
            }
            other => return Ok(other?),
        }
        if full == name {
            break;
        }
    }
    let pulled = pull_missing(ctx, client, name).await?;
    Ok(client.resolve_image(&pulled).await?)
}

async fn has_image(client: &Client, name: &str) -> Result<bool, Error> {
    match client.get_image(name).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// docker's behaviour for a missing image: pull it (normalized), then run.
async fn pull_missing(ctx: &Ctx, client: &Client, name: &str) -> Result<String, CliError> {
    let reference = normalize_ref(name);
    eprintln!("berthctl: image {name} not found locally; pulling {reference}");
    let image = client
        .pull(
            berth_api::berth::images::v1::PullRequest {
                r#ref: reference,
                snapshotter: ctx.snapshotter.clone(),
                unpack: true,
                ..Default::default()
            },
            |_| {},
        )
        .await?;
    Ok(image.name)
}

fn spec_options(args: &Args) -> Result<SpecOptions, CliError> {
    let files = args
        .env_file
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .map_err(|e| CliError::usage(format!("cannot read env file {}: {e}", p.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut mounts = Vec::new();
    for v in &args.volume {
        mounts.push(parse_volume(v).map_err(CliError::usage)?);
    }
    for m in &args.mount {
        mounts.push(parse_mount(m).map_err(CliError::usage)?);
    }
    for t in &args.tmpfs {
        mounts.push(parse_tmpfs(t).map_err(CliError::usage)?);
    }
    Ok(SpecOptions {
        args: args.command.clone(),
        entrypoint: args
            .entrypoint
            .as_ref()
            .map(|e| e.split_whitespace().map(str::to_string).collect()),
        env: collect_env(&files, &args.env, |k| std::env::var(k).ok()),
        cwd: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        tty: args.tty,
        mounts,
        read_only: args.read_only,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        privileged: args.privileged,
        network: if args.net == "host" {
            Network::Host
        } else {
            Network::None
        },
        memory: args.memory,
        cpus: args.cpus,
        pids_limit: args.pids_limit,
    })
}

/// `berthctl run`.
///
/// With `-d`, a plain container's output goes to its log; with `-d -i` or
/// `-d -t` its stdio FIFOs are kept after berthctl exits, so `attach` can
/// join it later (and `rm` removes them).
pub async fn run(ctx: &Ctx, args: Args) -> CmdResult {
    if args.rm && args.detach {
        return Err(CliError::usage("--rm cannot be combined with -d"));
    }
    let spec = spec_options(&args)?;
    let signals = (!args.detach).then(Signals::catch);
    let client = ctx.client().await?;
    // The lease that guards the new snapshot is made while the image is
    // looked up.
    let (image, lease) = tokio::join!(
        resolve_or_pull(ctx, &client, &args.image),
        client.create_lease()
    );
    let (image, lease) = match (image, lease) {
        (Ok(image), Ok(lease)) => (image, lease),
        // The image's failure is the one to tell.
        (Err(e), lease) => {
            if let Ok(lease) = lease {
                client.release_lease(&lease).await;
            }
            return Err(e);
        }
        (Ok(_), Err(e)) => return Err(e.into()),
    };
    let id = args
        .name
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_string());
    let new = NewContainer {
        id: id.clone(),
        image: image.image.name.clone(),
        snapshotter: ctx.snapshotter.clone(),
        labels: args.label.iter().cloned().collect::<HashMap<_, _>>(),
        spec,
    };
    if args.detach {
        return detached(&client, &lease, new, &image, &args).await;
    }
    let signals = signals.unwrap_or_else(Signals::catch);
    let fifos = FifoSet::new(&default_base(), &id, args.interactive, args.tty)?;
    let input: Option<Box<dyn std::io::Read + Send>> = args
        .interactive
        .then(|| Box::new(std::io::stdin()) as Box<dyn std::io::Read + Send>);
    let attached = fifos.attach(
        input,
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
    );
    let _raw = (args.tty && args.interactive && std::io::stdin().is_terminal())
        .then(tty::RawMode::enter)
        .flatten();
    let made = client
        .create_container_with_task_under(&lease, new, &image, Stdio::Fifos(&fifos))
        .await?;
    // Once the task is gone or stopped: remove it, and the container on --rm.
    let cleanup = async {
        if let Err(e) = client.delete_task(&id).await {
            tracing::debug!(error = %e, "delete task");
        }
        if args.rm
            && let Err(e) = client.remove_container(&made.container).await
        {
            eprintln!("berthctl: cannot remove container {id}: {}", sentence(&e));
        }
    };
    if let Err(e) = &made.task {
        let err = invoke_error(e);
        cleanup.await;
        return Err(err);
    }
    let how = Follow {
        start: true,
        tty: args.tty,
        close_stdin_at_eof: true,
    };
    match follow(signals, &client, &id, "", attached, how).await {
        // The output drains while the task and container are removed.
        Ok(exited) => Ok(tokio::join!(exited.drain(), cleanup).0),
        Err(e) => {
            cleanup.await;
            Err(e)
        }
    }
}

fn invoke_error(e: &Error) -> CliError {
    CliError {
        code: start_failure_code(e),
        message: sentence(e),
    }
}

/// `run -d`: create and start, print the ID. The task's stdio is the
/// container log, or kept FIFOs with `-i`/`-t`.
async fn detached(
    client: &Client,
    lease: &str,
    new: NewContainer,
    image: &ResolvedImage,
    args: &Args,
) -> CmdResult {
    let id = new.id.clone();
    let fifos = if args.interactive || args.tty {
        Some(FifoSet::new(
            &default_base(),
            &id,
            args.interactive,
            args.tty,
        )?)
    } else {
        None
    };
    let stdio = fifos.as_ref().map_or(Stdio::Null, Stdio::Fifos);
    let made = client
        .create_container_with_task_under(lease, new, image, stdio)
        .await?;
    made.task.map_err(|e| invoke_error(&e))?;
    if let Err(e) = client.start_task(&id, "").await {
        let _ = client.delete_task(&id).await;
        return Err(invoke_error(&e));
    }
    if let Some(mut fifos) = fifos {
        fifos.keep();
    }
    println!("{id}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("64k"), Ok(64 << 10));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("1.5g"), Ok(3 << 29));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn volumes_mounts_and_tmpfs() {
        assert_eq!(
            parse_volume("/a:/b:ro"),
            Ok(ExtraMount::Bind {
                source: "/a".into(),
                destination: "/b".into(),
                readonly: true
            })
        );
        assert!(parse_volume("named:/b").is_err());
        assert!(parse_volume("/a:/b:zz").is_err());
        assert_eq!(
            parse_mount("type=bind,source=/a,target=/b,readonly"),
            parse_volume("/a:/b:ro")
        );
        assert!(parse_mount("type=volume,source=x,target=/b").is_err());
        assert_eq!(
            parse_tmpfs("/scratch:size=1m,mode=700"),
            Ok(ExtraMount::Tmpfs {
                destination: "/scratch".into(),
                options: vec!["size=1m".into(), "mode=700".into()]
            })
        );
    }

    #[test]
    fn env_files_then_flags_with_host_passthrough() {
        let file = "# comment\nA=1\n\nFROM_HOST\nB=2\n".to_string();
        let env = collect_env(&[file], &["B=3".into(), "MISSING".into()], |k| {
            (k == "FROM_HOST").then(|| "h".to_string())
        });
        assert_eq!(env, ["A=1", "FROM_HOST=h", "B=2", "B=3"]);
    }

    #[test]
    fn short_names_normalize() {
        assert_eq!(normalize_ref("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize_ref("me/app:1"), "docker.io/me/app:1");
        assert_eq!(
            normalize_ref("127.0.0.1:5000/bb"),
            "127.0.0.1:5000/bb:latest"
        );
        assert_eq!(
            normalize_ref("localhost/x@sha256:ab"),
            "localhost/x@sha256:ab"
        );
    }

    #[test]
    fn run_flags_parse() {
        let cli = crate::cli::Cli::try_parse_from([
            "berthctl",
            "-n",
            "ns1",
            "run",
            "--rm",
            "-it",
            "-e",
            "A=1",
            "-v",
            "/h:/c:ro",
            "--memory",
            "64m",
            "--cap-add",
            "NET_ADMIN",
            "--net",
            "host",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "exit 5",
        ])
        .expect("parse");
        assert_eq!(cli.namespace, "ns1");
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("not run");
        };
        assert!(args.rm && args.interactive && args.tty && !args.detach);
        assert_eq!(args.image, "busybox");
        assert_eq!(args.command, ["sh", "-c", "exit 5"]);
        assert_eq!(args.memory, Some(64 << 20));
        let spec = spec_options(&args).expect("options");
        assert_eq!(spec.network, Network::Host);
        assert_eq!(spec.env, ["A=1"]);
        assert_eq!(spec.mounts.len(), 1);
        assert!(
            crate::cli::Cli::try_parse_from(["berthctl", "run", "--net", "bridge", "img"]).is_err()
        );
    }
}
