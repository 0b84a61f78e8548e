//! berthctl's command line: global flags and the verb tree. Each noun's
//! arguments live beside its implementation in `commands/<noun>.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::commands::{
    attach, containers, content, events, exec, images, leases, logs, namespaces, pull, run,
    snapshots, system,
};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for programs (one object per line for streams).
    Json,
}

/// berthctl talks to berthd, berth's container supervisor.
#[derive(Debug, Parser)]
#[command(
    name = "berthctl",
    version,
    about = "Run and manage containers with berthd",
    long_about = "berthctl talks to berthd (berth's container supervisor) over its unix socket.\n\
                  Exit codes: 125 when berthctl or berthd fails, 126 when the container's command \
                  cannot be invoked, 127 when it is not found, else the command's own status.",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// berthd's socket
    #[arg(
        long,
        global = true,
        env = "BERTH_ADDRESS",
        default_value = berth_client::DEFAULT_ADDRESS,
        value_name = "SOCKET"
    )]
    pub address: PathBuf,
    /// Namespace to work in
    #[arg(
        short = 'n',
        long,
        global = true,
        env = "BERTH_NAMESPACE",
        default_value = berth_client::DEFAULT_NAMESPACE
    )]
    pub namespace: String,
    /// Snapshotter for images and containers
    #[arg(
        long,
        global = true,
        env = "BERTH_SNAPSHOTTER",
        default_value = berth_client::DEFAULT_SNAPSHOTTER
    )]
    pub snapshotter: String,
    /// berthd's state directory (where container logs are kept)
    #[arg(
        long,
        global = true,
        env = "BERTH_STATE",
        default_value = "/run/berth",
        value_name = "DIR"
    )]
    pub state: PathBuf,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show client and server versions
    Version,
    /// Show berthd's identity and plugins
    Info,
    /// Manage namespaces
    #[command(subcommand, visible_alias = "ns")]
    Namespaces(namespaces::Cmd),
    /// Manage images
    #[command(subcommand, visible_alias = "image")]
    Images(images::Cmd),
    /// Pull an image from a registry
    Pull(pull::Args),
    /// Manage the content store
    #[command(subcommand)]
    Content(content::Cmd),
    /// Manage snapshots
    #[command(subcommand, visible_alias = "snapshot")]
    Snapshots(snapshots::Cmd),
    /// Manage leases
    #[command(subcommand, visible_alias = "lease")]
    Leases(leases::Cmd),
    /// Print events as they happen
    Events(events::Args),
    /// List containers
    Ps(containers::PsArgs),
    /// Create and run a container from an image
    Run(Box<run::Args>),
    /// Run a command in a running container
    Exec(exec::Args),
    /// Attach to a running container started with -i or -t
    Attach(attach::Args),
    /// Show a container's output
    Logs(logs::Args),
    /// Send a signal to containers
    Kill(containers::KillArgs),
    /// Stop containers (stop signal, then SIGKILL)
    Stop(containers::StopArgs),
    /// Start stopped containers (detached)
    Start(containers::IdsArgs),
    /// Remove containers
    Rm(containers::RmArgs),
    /// Freeze every process of containers
    Pause(containers::IdsArgs),
    /// Thaw paused containers
    Unpause(containers::IdsArgs),
    /// Show resource usage of containers
    Stats(containers::StatsArgs),
    /// List the processes of a container
    Top(containers::TopArgs),
    /// Show containers as JSON (record, spec, task)
    Inspect(containers::IdsArgs),
    /// Print a shell completion script
    Completion(system::CompletionArgs),
}
