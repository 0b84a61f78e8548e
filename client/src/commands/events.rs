//! `events [--filter F]... [--format json]`.

use futures::StreamExt;

use super::output::print_text;
use super::{CmdResult, Ctx};
use crate::cli::Format;
use berth_client::events::{envelope_json, timestamp_text};

/// `events` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Filter (containerd syntax, e.g. 'topic~="/tasks/"'), repeatable (ORed)
    #[arg(long, short)]
    pub filter: Vec<String>,
}

/// Prints events until interrupted: one line per event, or one JSON object
/// per line with `--format json`.
pub async fn run(ctx: &Ctx, args: Args) -> CmdResult {
    let client = ctx.client().await?;
    let mut stream = client.subscribe(args.filter).await?;
    while let Some(env) = stream.next().await {
        let env = env?;
        let v = envelope_json(&env);
        let line = match ctx.format {
            Format::Json => serde_json::to_string(&v).unwrap_or_default(),
            Format::Table => format!(
                "{} {} {} {}",
                timestamp_text(env.timestamp.as_ref()),
                env.namespace,
                env.topic,
                v["event"]
            ),
        };
        print_text(&format!("{line}\n"));
    }
    Ok(0)
}
