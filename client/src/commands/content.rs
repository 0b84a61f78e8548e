//! `content ls|rm`.

use berth_api::containerd::services::content::v1::{DeleteContentRequest, ListContentRequest};
use berth_client::Error;
use futures::StreamExt;
use serde_json::json;

use super::output::{Table, emit, human_size, labels_text, ts_ago};
use super::{CmdResult, Ctx};

/// Content verbs.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// List blobs
    #[command(visible_alias = "list")]
    Ls {
        /// Filter (containerd syntax), repeatable
        #[arg(long)]
        filter: Vec<String>,
        /// Print digests only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove blobs
    #[command(visible_alias = "remove")]
    Rm {
        /// Digests
        #[arg(required = true)]
        digests: Vec<String>,
    },
}

/// Runs a content verb.
pub async fn run(ctx: &Ctx, cmd: Cmd) -> CmdResult {
    let client = ctx.client().await?;
    match cmd {
        Cmd::Ls { filter, quiet } => {
            let mut stream = client
                .content()
                .list(ListContentRequest { filters: filter })
                .await
                .map_err(Error::at("Content.List"))?
                .into_inner();
            let mut infos = Vec::new();
            while let Some(msg) = stream.next().await {
                infos.extend(msg.map_err(Error::at("Content.List"))?.info);
            }
            infos.sort_by(|a, b| a.digest.cmp(&b.digest));
            if quiet {
                infos.iter().for_each(|i| println!("{}", i.digest));
                return Ok(0);
            }
            let mut t = Table::new(&["DIGEST", "SIZE", "AGE", "LABELS"]);
            let mut j = Vec::new();
            for i in &infos {
                t.row(vec![
                    i.digest.clone(),
                    human_size(i.size),
                    ts_ago(i.created_at.as_ref()),
                    labels_text(&i.labels),
                ]);
                j.push(
                    json!({"digest": i.digest, "size": i.size, "labels": i.labels,
                    "created_at": berth_client::events::timestamp_text(i.created_at.as_ref())}),
                );
            }
            emit(ctx.format, t, j);
        }
        Cmd::Rm { digests } => {
            for digest in digests {
                client
                    .content()
                    .delete(DeleteContentRequest {
                        digest: digest.clone(),
                    })
                    .await
                    .map_err(Error::at("Content.Delete"))?;
                println!("{digest}");
            }
        }
    }
    Ok(0)
}
