//! The verbs of berthctl, one file per noun.

pub mod attach;
pub mod containers;
pub mod content;
pub mod detach_keys;
pub mod events;
pub mod exec;
pub mod exit;
pub mod foreground;
pub mod images;
pub mod leases;
pub mod logs;
pub mod namespaces;
pub mod output;
pub mod pull;
pub mod run;
pub mod snapshots;
pub mod system;
pub mod tty;

use std::path::PathBuf;

use berth_client::Client;

use crate::cli::{Cli, Command, Format};
use exit::CliError;

/// What every command gets: where berthd is, the namespace, the format.
pub struct Ctx {
    /// Socket path.
    pub address: PathBuf,
    /// Namespace.
    pub namespace: String,
    /// Snapshotter.
    pub snapshotter: String,
    /// berthd's state dir.
    pub state: PathBuf,
    /// Output format.
    pub format: Format,
}

/// A command's outcome: the exit code, or a failure to report.
pub type CmdResult = Result<u8, CliError>;

impl Ctx {
    /// Connects to berthd in the namespace.
    pub async fn client(&self) -> Result<Client, CliError> {
        Ok(Client::connect(&self.address)
            .await?
            .with_namespace(&self.namespace)?)
    }
}

/// Runs the parsed command line.
pub async fn dispatch(cli: Cli) -> CmdResult {
    let ctx = Ctx {
        address: cli.address,
        namespace: cli.namespace,
        snapshotter: cli.snapshotter,
        state: cli.state,
        format: cli.format,
    };
    match cli.command {
        Command::Version => system::version(&ctx).await,
        Command::Info => system::info(&ctx).await,
        Command::Completion(args) => system::completion(args),
        Command::Namespaces(cmd) => namespaces::run(&ctx, cmd).await,
        Command::Images(cmd) => images::run(&ctx, cmd).await,
        Command::Pull(args) => pull::run(&ctx, args).await,
        Command::Content(cmd) => content::run(&ctx, cmd).await,
        Command::Snapshots(cmd) => snapshots::run(&ctx, cmd).await,
        Command::Leases(cmd) => leases::run(&ctx, cmd).await,
        Command::Events(args) => events::run(&ctx, args).await,
        Command::Ps(args) => containers::ps(&ctx, args).await,
        Command::Run(args) => run::run(&ctx, *args).await,
        Command::Exec(args) => exec::run(&ctx, args).await,
        Command::Attach(args) => attach::run(&ctx, args).await,
        Command::Logs(args) => logs::run(&ctx, args).await,
        Command::Kill(args) => containers::kill(&ctx, args).await,
        Command::Stop(args) => containers::stop(&ctx, args).await,
        Command::Start(args) => containers::start(&ctx, args).await,
        Command::Rm(args) => containers::rm(&ctx, args).await,
        Command::Pause(args) => containers::pause(&ctx, args, true).await,
        Command::Unpause(args) => containers::pause(&ctx, args, false).await,
        Command::Stats(args) => containers::stats(&ctx, args).await,
        Command::Top(args) => containers::top(&ctx, args).await,
        Command::Inspect(args) => containers::inspect(&ctx, args).await,
    }
}

/// Parses `key=value` (for `--label`).
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}
