//! `leases ls`.

use berth_api::containerd::services::leases::v1::ListRequest;
use berth_client::Error;
use serde_json::json;

use super::output::{Table, emit, labels_text, ts_ago};
use super::{CmdResult, Ctx};

/// Lease verbs.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// List leases
    #[command(visible_alias = "list")]
    Ls {
        /// Filter (containerd syntax), repeatable
        #[arg(long)]
        filter: Vec<String>,
    },
}

/// Runs a lease verb.
pub async fn run(ctx: &Ctx, cmd: Cmd) -> CmdResult {
    let client = ctx.client().await?;
    let Cmd::Ls { filter } = cmd;
    let leases = client
        .leases()
        .list(ListRequest { filters: filter })
        .await
        .map_err(Error::at("Leases.List"))?
        .into_inner()
        .leases;
    let mut t = Table::new(&["ID", "CREATED", "LABELS"]);
    let mut j = Vec::new();
    for l in &leases {
        t.row(vec![
            l.id.clone(),
            ts_ago(l.created_at.as_ref()),
            labels_text(&l.labels),
        ]);
        j.push(json!({"id": l.id, "created_at": berth_client::events::timestamp_text(l.created_at.as_ref()), "labels": l.labels}));
    }
    emit(ctx.format, t, j);
    Ok(0)
}
