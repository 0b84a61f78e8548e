//! `attach`: join a running container's stdio again, as `docker attach`
//! (ctr's `tasks attach`).
//!
//! Only a process started with stdio FIFOs can be attached to: `run -i`,
//! `run -t` (also with `-d`, which keeps its FIFOs after berthctl exits).
//! A plain `run -d` or `start` writes to the container log instead (read it
//! with `logs`). While nobody is attached, output waits in the FIFO (64 KiB,
//! then the process blocks on write, as with containerd); the container log
//! still gets a copy.

use std::io::IsTerminal;

use super::exit::CliError;
use super::foreground::{Follow, Signals, follow};
use super::{CmdResult, Ctx, tty};

/// `attach` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not forward local input
    #[arg(long)]
    pub no_stdin: bool,
    /// Container
    pub container: String,
}

/// `berthctl attach`: returns the container's exit status once it exits.
pub async fn run(ctx: &Ctx, args: Args) -> CmdResult {
    let signals = Signals::catch();
    let client = ctx.client().await?;
    let id = args.container.as_str();
    let fifos = client.attach_fifos(id, "").await.map_err(CliError::from)?;
    let input: Option<Box<dyn std::io::Read + Send>> = (!args.no_stdin && fifos.stdin.is_some())
        .then(|| Box::new(std::io::stdin()) as Box<dyn std::io::Read + Send>);
    let interactive = input.is_some();
    let attached = fifos.attach(
        input,
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
    );
    let _raw = (fifos.terminal && interactive && std::io::stdin().is_terminal())
        .then(tty::RawMode::enter)
        .flatten();
    let how = Follow {
        start: false,
        tty: fifos.terminal,
        close_stdin_at_eof: false,
    };
    Ok(follow(signals, &client, id, "", attached, how)
        .await?
        .drain()
        .await)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn attach_flags_parse() {
        let cli = crate::cli::Cli::try_parse_from(["berthctl", "attach", "--no-stdin", "web"])
            .expect("parse");
        let crate::cli::Command::Attach(args) = cli.command else {
            panic!("not attach");
        };
        assert!(args.no_stdin);
        assert_eq!(args.container, "web");
        assert!(crate::cli::Cli::try_parse_from(["berthctl", "attach"]).is_err());
    }
}
