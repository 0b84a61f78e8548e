//! `berth-runc`: runc's command line over the library. [`cli_main`] is the whole binary;
//! the shim's single-threaded helper may call it with runc-style arguments too.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::container::{CreateOptions, ExecOptions};
use crate::state::{DEFAULT_ROOT, RuntimeRoot, Status};
use crate::{container, default_spec, features};

#[derive(Parser, Debug)]
#[command(
    name = "berth-runc",
    version,
    about = "berth's OCI runtime (runc-compatible CLI)"
)]
struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd cgroups (not supported: refused).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Debug, Clone)]
struct CreateArgs {
    /// Bundle directory.
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    id: String,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            preserve_fds: self.preserve_fds,
            no_pivot: self.no_pivot,
            stdio: None,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create, start and wait for a container; exits with its code.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(long, short = 'd')]
        detach: bool,
        #[arg(long)]
        keep: bool,
    },
    /// Print the state of a container as JSON.
    State { id: String },
    /// Send a signal to a container's init (or all processes).
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// Delete a container.
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(long, short = 'q')]
        quiet: bool,
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
    },
    /// Processes of a container.
    Ps {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true)]
        ps_args: Vec<String>,
    },
    /// Run a process in a running container.
    Exec {
        #[arg(long, short = 'p')]
        process: Option<PathBuf>,
        #[arg(long, short = 'd')]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long, short = 't')]
        tty: bool,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(long, short = 'e')]
        env: Vec<String>,
        #[arg(long, short = 'u')]
        user: Option<String>,
        #[arg(long = "additional-gids", short = 'g')]
        additional_gids: Vec<u32>,
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: i32,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Freeze all processes of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Resource statistics (`--stats` once, else every interval).
    Events {
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5")]
        interval: u64,
        id: String,
    },
    /// Update resource limits from a JSON file (`-r`).
    Update {
        #[arg(long, short = 'r')]
        resources: Option<PathBuf>,
        #[arg(long)]
        memory: Option<i64>,
        #[arg(long = "pids-limit")]
        pids_limit: Option<i64>,
        #[arg(long = "cpu-shares")]
        cpu_shares: Option<u64>,
        #[arg(long = "cpu-quota")]
        cpu_quota: Option<i64>,
        #[arg(long = "cpu-period")]
        cpu_period: Option<u64>,
        id: String,
    },
    /// Write a default config.json.
    Spec {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        #[arg(long = "rootless")]
        rootless_spec: bool,
    },
    /// Print the runtime's features as JSON.
    Features,
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    // Warnings and the failure line by default, like runc: berth-shim passes --log on
    // every command, and a line per create/start/exec/delete would only grow the file.
    let level = if cli.debug { "debug" } else { "warn" };
    let filter =
        EnvFilter::try_from_env("BERTH_RUNC_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    match &cli.log {
        Some(path) => {
            let Ok(file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            else {
                return;
            };
            let w = std::sync::Mutex::new(file);
            let _ = if cli.log_format == "json" {
                builder
                    .event_format(crate::log::RuncJson)
                    .with_writer(w)
                    .try_init()
            } else {
                builder.with_writer(w).try_init()
            };
        }
        None => {
            let _ = builder
                .with_env_filter(EnvFilter::new(level))
                .with_writer(std::io::stderr)
                .try_init();
        }
    }
}

/// The whole `berth-runc` command line; returns the process exit code.
pub fn cli_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging(&cli);
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            // The library's messages already carry their causes: print the top level.
            log_failure(&e);
            eprintln!("berth-runc: {e}");
            1
        }
    }
}

/// The failure's log line: its message as `msg`, and for a library error its kind (and
/// an exec failure's errno) as typed fields, so readers never parse the message.
fn log_failure(e: &anyhow::Error) {
    let Some(l) = e.downcast_ref::<crate::Error>() else {
        tracing::error!("{e}");
        return;
    };
    let kind = l.kind().as_str();
    match l {
        crate::Error::Exec { source, .. } => {
            tracing::error!(kind, errno = source.errno as i32, "{e}")
        }
        _ => tracing::error!(kind, "{e}"),
    }
}

fn json_print<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        anyhow::bail!("--systemd-cgroup is not supported");
    }
    let root = RuntimeRoot::new(&cli.root);
    match &cli.cmd {
        Cmd::Create(a) => {
            container::create::create(&root, &a.id, &a.bundle, &a.options())?;
        }
        Cmd::Start { id } => container::start::start(&root, id)?,
        Cmd::Run {
            create,
            detach,
            keep,
        } => return run_cmd(&root, create, *detach, *keep),
        Cmd::State { id } => json_print(&container::query::state(&root, id)?)?,
        Cmd::Kill { id, signal, all } => {
            let sig = container::kill::parse_signal(signal)?;
            container::kill::kill(&root, id, sig, *all)?;
        }
        Cmd::Delete { force, id } => container::delete::delete(&root, id, *force)?,
        Cmd::List { quiet, format } => {
            let all = container::query::list(&root)?;
            if *quiet {
                for s in &all {
                    println!("{}", s.id);
                }
            } else if format == "json" {
                json_print(&all)?;
            } else {
                println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
                for s in &all {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        s.id,
                        s.pid,
                        s.status,
                        s.bundle.display(),
                        s.created,
                        s.owner
                    );
                }
            }
        }
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => {
            let pids = container::query::ps(&root, id)?;
            if format == "json" {
                json_print(&pids)?;
            } else {
                let args = if ps_args.is_empty() {
                    vec!["-ef".to_string()]
                } else {
                    ps_args.clone()
                };
                let out = std::process::Command::new("ps").args(&args).output()?;
                let text = String::from_utf8_lossy(&out.stdout);
                let mut lines = text.lines();
                let header = lines.next().unwrap_or_default();
                let col = header
                    .split_whitespace()
                    .position(|h| h == "PID")
                    .unwrap_or(1);
                println!("{header}");
                for l in lines {
                    if l.split_whitespace()
                        .nth(col)
                        .and_then(|p| p.parse::<i32>().ok())
                        .is_some_and(|p| pids.contains(&p))
                    {
                        println!("{l}");
                    }
                }
            }
        }
        Cmd::Exec { .. } => return exec_cmd(&root, &cli.cmd),
        Cmd::Pause { id } => container::query::pause(&root, id)?,
        Cmd::Resume { id } => container::query::resume(&root, id)?,
        Cmd::Events {
            stats,
            interval,
            id,
        } => loop {
            let s = container::query::stats(&root, id)?;
            println!(
                "{}",
                serde_json::json!({"type": "stats", "id": id, "data": s})
            );
            if *stats {
                break;
            }
            std::thread::sleep(Duration::from_secs((*interval).max(1)));
            if container::query::state(&root, id)?.status == Status::Stopped {
                break;
            }
        },
        Cmd::Update {
            resources,
            memory,
            pids_limit,
            cpu_shares,
            cpu_quota,
            cpu_period,
            id,
        } => {
            let mut r: serde_json::Value = match resources {
                Some(p) => serde_json::from_slice(&std::fs::read(p)?)?,
                None => serde_json::json!({}),
            };
            if let Some(m) = memory {
                r["memory"]["limit"] = (*m).into();
            }
            if let Some(p) = pids_limit {
                r["pids"]["limit"] = (*p).into();
            }
            if let Some(s) = cpu_shares {
                r["cpu"]["shares"] = (*s).into();
            }
            if let Some(q) = cpu_quota {
                r["cpu"]["quota"] = (*q).into();
            }
            if let Some(p) = cpu_period {
                r["cpu"]["period"] = (*p).into();
            }
            let res: oci_spec::runtime::LinuxResources = serde_json::from_value(r)?;
            container::query::update(&root, id, &res)?;
        }
        Cmd::Spec {
            bundle,
            rootless_spec,
        } => {
            let path = bundle.join(crate::spec::CONFIG_FILE);
            if path.exists() {
                anyhow::bail!("{} exists already", path.display());
            }
            let rootless = *rootless_spec || !nix::unistd::geteuid().is_root();
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&default_spec::spec(rootless))?,
            )?;
        }
        Cmd::Features => json_print(&features::features())?,
    }
    Ok(0)
}

/// Blocks the forwarded signals and SIGCHLD; returns the set.
fn block_signals() -> anyhow::Result<SigSet> {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set.thread_block()?;
    Ok(set)
}

/// Waits for `pid` (our child after reparenting), forwarding signals; returns its code.
fn wait_forwarding(pid: i32, set: &SigSet) -> anyhow::Result<i32> {
    loop {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                    return Ok(128 + sig as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => break,
                Ok(_) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let sig = set.wait()?;
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
        }
    }
}

fn set_subreaper() -> anyhow::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        anyhow::bail!("PR_SET_CHILD_SUBREAPER: {}", nix::Error::last());
    }
    Ok(())
}

fn run_cmd(root: &RuntimeRoot, a: &CreateArgs, detach: bool, keep: bool) -> anyhow::Result<i32> {
    if !detach {
        set_subreaper()?;
    }
    let pid = container::create::create(root, &a.id, &a.bundle, &a.options())?;
    let set = if detach { None } else { Some(block_signals()?) };
    if let Err(e) = container::start::start(root, &a.id) {
        let _ = container::delete::delete(root, &a.id, true);
        return Err(e.into());
    }
    let Some(set) = set else {
        return Ok(0);
    };
    let code = wait_forwarding(pid, &set)?;
    if !keep {
        container::delete::delete(root, &a.id, true)?;
    }
    Ok(code)
}

fn exec_cmd(root: &RuntimeRoot, cmd: &Cmd) -> anyhow::Result<i32> {
    let Cmd::Exec {
        process,
        detach,
        pid_file,
        tty,
        console_socket,
        cwd,
        env,
        user,
        additional_gids,
        no_new_privs,
        preserve_fds,
        id,
        command,
    } = cmd
    else {
        anyhow::bail!("not an exec command");
    };
    // Keep the host binary out of reach of the container we are about to join.
    crate::security::reexec_sealed()?;
    let proc_spec: oci_spec::runtime::Process = match process {
        Some(p) => serde_json::from_slice(&std::fs::read(p)?)?,
        None => {
            if command.is_empty() {
                anyhow::bail!("exec needs a command or --process");
            }
            let cfg = root.load_config(id)?;
            let mut p = cfg.process().clone().unwrap_or_default();
            p.set_args(Some(command.clone()));
            p.set_terminal(Some(*tty));
            if let Some(c) = cwd {
                p.set_cwd(c.clone());
            }
            let mut e = p.env().clone().unwrap_or_default();
            e.extend(env.iter().cloned());
            p.set_env(Some(e));
            if let Some(u) = user {
                let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
                let mut usr = p.user().clone();
                usr.set_uid(uid.parse()?);
                usr.set_gid(gid.parse()?);
                if !additional_gids.is_empty() {
                    usr.set_additional_gids(Some(additional_gids.clone()));
                }
                p.set_user(usr);
            }
            if *no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            p
        }
    };
    if !detach {
        set_subreaper()?;
    }
    let opts = ExecOptions {
        process: proc_spec,
        console_socket: console_socket.clone(),
        pid_file: pid_file.clone(),
        detach: *detach,
        preserve_fds: *preserve_fds,
    };
    let set = if *detach {
        None
    } else {
        Some(block_signals()?)
    };
    let pid = container::exec::exec(root, id, &opts)?;
    match set {
        None => Ok(0),
        Some(set) => wait_forwarding(pid, &set),
    }
}
