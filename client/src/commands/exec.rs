//! `exec`: run another process in a running container.

use std::io::IsTerminal;

use berth_client::cio::{FifoSet, default_base};
use berth_client::container::container_spec;
use berth_client::rootfs::user_db;
use berth_client::spec::ResolvedUser;
use berth_client::task::{Stdio, exec_process};
use berth_client::{Client, Error};

use super::exit::{CliError, sentence, start_failure_code};
use super::foreground::{Signals, drive};
use super::run::collect_env;
use super::{CmdResult, Ctx, tty};

/// `exec` arguments.
#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Keep stdin open and attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to pass the host's)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container
    pub container: String,
    /// Command and arguments
    #[arg(required = true)]
    pub command: Vec<String>,
}

async fn resolve_user(client: &Client, id: &str, user: &str) -> Result<ResolvedUser, Error> {
    let container = client.get_container(id).await?;
    let mounts = client
        .snapshot_mounts(&container.snapshotter, &container.snapshot_key)
        .await?;
    user_db(&mounts).resolve(user)
}

/// `berthctl exec`.
pub async fn run(ctx: &Ctx, args: Args) -> CmdResult {
    let client = ctx.client().await?;
    let id = args.container.as_str();
    let container = client.get_container(id).await?;
    let spec = container_spec(&container)?;
    let user = match &args.user {
        Some(u) => Some(resolve_user(&client, id, u).await?),
        None => None,
    };
    let env = collect_env(&[], &args.env, |k| std::env::var(k).ok());
    let process = exec_process(
        &spec,
        &args.command,
        &env,
        args.workdir.as_deref(),
        user.as_ref(),
        args.tty,
    );
    let exec_id = format!("exec-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let invoke = |e: Error| CliError {
        code: start_failure_code(&e),
        message: sentence(&e),
    };

    if args.detach {
        client
            .exec(id, &exec_id, &process, Stdio::Null)
            .await
            .map_err(invoke)?;
        client.start_task(id, &exec_id).await.map_err(invoke)?;
        println!("{exec_id}");
        return Ok(0);
    }

    let signals = Signals::catch();
    let fifos = FifoSet::new(&default_base(), &exec_id, args.interactive, args.tty)?;
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
    client
        .exec(id, &exec_id, &process, Stdio::Fifos(&fifos))
        .await
        .map_err(invoke)?;
    let result = drive(signals, &client, id, &exec_id, attached, args.tty).await;
    if let Err(e) = client.delete_process(id, &exec_id).await {
        tracing::debug!(error = %e, "delete exec");
    }
    result
}
