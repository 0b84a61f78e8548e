//! `attach`: join a running container's stdio again, as `docker attach`
//! (ctr's `tasks attach`).
//!
//! Only a process started with stdio FIFOs can be attached to: `run -i`,
//! `run -t` (also with `-d`, which keeps its FIFOs after berthctl exits).
//! A plain `run -d` or `start` writes to the container log instead (read it
//! with `logs`). While nobody is attached, output waits in the FIFO (64 KiB,
//! then the process blocks on write, as with containerd); the container log
//! still gets a copy. The detach keys (default ctrl-p ctrl-q) leave the
//! container running; the end of local input does too (its stdin stays
//! open for the next attach).

use std::io::IsTerminal;

use super::detach_keys::{self, DetachKeys};
use super::exit::CliError;
use super::foreground::{Follow, Signals, follow};
use super::{CmdResult, Ctx, tty};

/// `attach` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not forward local input
    #[arg(long)]
    pub no_stdin: bool,
    /// Keys that detach and leave the container running
    #[arg(long, default_value = detach_keys::DEFAULT, value_parser = detach_keys::checked)]
    pub detach_keys: String,
    /// Container
    pub container: String,
}

/// `berthctl attach`: returns the container's exit status once it exits.
pub async fn run(ctx: &Ctx, args: Args) -> CmdResult {
    let signals = Signals::catch();
    let client = ctx.client().await?;
    let id = args.container.as_str();
    let fifos = client.attach_fifos(id, "").await.map_err(CliError::from)?;
    let interactive = !args.no_stdin && fifos.stdin.is_some();
    let (input, detached): (Option<Box<dyn std::io::Read + Send>>, _) = if interactive {
        let keys = detach_keys::parse(&args.detach_keys).map_err(CliError::usage)?;
        let (keys, detached) = DetachKeys::new(std::io::stdin(), keys);
        (Some(Box::new(keys)), Some(detached))
    } else {
        (None, None)
    };
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
    let detached = async {
        let typed = match detached {
            Some(rx) => rx.await.is_ok(),
            None => false,
        };
        if !typed {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        exited = follow(signals, &client, id, "", attached, how) => Ok(exited?.drain().await),
        () = detached => {
            drop(_raw);
            eprintln!("berthctl: detached from {id}; it keeps running");
            Ok(0)
        }
    }
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
        assert_eq!(args.detach_keys, "ctrl-p,ctrl-q");
        let cli =
            crate::cli::Cli::try_parse_from(["berthctl", "attach", "--detach-keys", "ctrl-a", "w"])
                .expect("parse");
        let crate::cli::Command::Attach(args) = cli.command else {
            panic!("not attach");
        };
        assert_eq!(args.detach_keys, "ctrl-a");
        assert!(
            crate::cli::Cli::try_parse_from(["berthctl", "attach", "--detach-keys", "ctrl-", "w"])
                .is_err()
        );
        assert!(crate::cli::Cli::try_parse_from(["berthctl", "attach"]).is_err());
    }
}
