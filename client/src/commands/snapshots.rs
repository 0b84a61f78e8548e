//! `snapshots ls|rm|usage`.

use berth_api::containerd::services::snapshots::v1::{Kind, ListSnapshotsRequest, UsageRequest};
use berth_client::Error;
use futures::StreamExt;
use serde_json::json;

use super::output::{Table, emit, human_size};
use super::{CmdResult, Ctx};

/// Snapshot verbs.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// List snapshots
    #[command(visible_alias = "list")]
    Ls {
        /// Filter (containerd syntax), repeatable
        #[arg(long)]
        filter: Vec<String>,
    },
    /// Remove snapshots
    #[command(visible_alias = "remove")]
    Rm {
        /// Keys
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Show disk usage of snapshots (all when no key is given)
    Usage {
        /// Keys
        keys: Vec<String>,
    },
}

fn kind_name(kind: i32) -> &'static str {
    match Kind::try_from(kind).unwrap_or(Kind::Unknown) {
        Kind::Unknown => "unknown",
        Kind::View => "view",
        Kind::Active => "active",
        Kind::Committed => "committed",
    }
}

/// Runs a snapshot verb.
pub async fn run(ctx: &Ctx, cmd: Cmd) -> CmdResult {
    let client = ctx.client().await?;
    let snaps = client.snapshots(&ctx.snapshotter);
    let mut raw = snaps.client.clone();
    let list = |filters: Vec<String>| {
        let mut raw = snaps.client.clone();
        let name = snaps.name.clone();
        async move {
            let mut stream = raw
                .list(ListSnapshotsRequest {
                    snapshotter: name,
                    filters,
                })
                .await
                .map_err(Error::at("Snapshots.List"))?
                .into_inner();
            let mut infos = Vec::new();
            while let Some(msg) = stream.next().await {
                infos.extend(msg.map_err(Error::at("Snapshots.List"))?.info);
            }
            infos.sort_by(|a, b| a.name.cmp(&b.name));
            Ok::<_, Error>(infos)
        }
    };
    match cmd {
        Cmd::Ls { filter } => {
            let infos = list(filter).await?;
            let mut t = Table::new(&["KEY", "PARENT", "KIND"]);
            let mut j = Vec::new();
            for i in &infos {
                t.row(vec![
                    i.name.clone(),
                    i.parent.clone(),
                    kind_name(i.kind).into(),
                ]);
                j.push(
                    json!({"key": i.name, "parent": i.parent, "kind": kind_name(i.kind),
                              "labels": i.labels}),
                );
            }
            emit(ctx.format, t, j);
        }
        Cmd::Rm { keys } => {
            for key in keys {
                client.remove_snapshot(&ctx.snapshotter, &key).await?;
                println!("{key}");
            }
        }
        Cmd::Usage { keys } => {
            let keys = if keys.is_empty() {
                list(vec![]).await?.into_iter().map(|i| i.name).collect()
            } else {
                keys
            };
            let mut t = Table::new(&["KEY", "SIZE", "INODES"]);
            let mut j = Vec::new();
            for key in keys {
                let u = raw
                    .usage(UsageRequest {
                        snapshotter: ctx.snapshotter.clone(),
                        key: key.clone(),
                    })
                    .await
                    .map_err(Error::at("Snapshots.Usage"))?
                    .into_inner();
                t.row(vec![key.clone(), human_size(u.size), u.inodes.to_string()]);
                j.push(json!({"key": key, "size": u.size, "inodes": u.inodes}));
            }
            emit(ctx.format, t, j);
        }
    }
    Ok(0)
}
