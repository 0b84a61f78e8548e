//! `namespaces ls|create|rm`.

use berth_api::containerd::services::namespaces::v1::{
    CreateNamespaceRequest, DeleteNamespaceRequest, ListNamespacesRequest, Namespace,
};
use berth_client::Error;
use serde_json::json;

use super::output::{Table, emit, labels_text};
use super::{CmdResult, Ctx, key_value};

/// Namespace verbs.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// List namespaces
    #[command(visible_alias = "list")]
    Ls {
        /// Print names only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a namespace
    Create {
        /// Name
        name: String,
        /// Label KEY=VALUE (repeatable)
        #[arg(long, value_parser = key_value)]
        label: Vec<(String, String)>,
    },
    /// Remove empty namespaces
    #[command(visible_alias = "remove")]
    Rm {
        /// Names
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Runs a namespace verb.
pub async fn run(ctx: &Ctx, cmd: Cmd) -> CmdResult {
    let client = ctx.client().await?;
    let mut ns = client.namespaces();
    match cmd {
        Cmd::Ls { quiet } => {
            let mut list = ns
                .list(ListNamespacesRequest::default())
                .await
                .map_err(Error::at("Namespaces.List"))?
                .into_inner()
                .namespaces;
            list.sort_by(|a, b| a.name.cmp(&b.name));
            if quiet {
                list.iter().for_each(|n| println!("{}", n.name));
                return Ok(0);
            }
            let mut t = Table::new(&["NAME", "LABELS"]);
            let mut j = Vec::new();
            for n in &list {
                t.row(vec![n.name.clone(), labels_text(&n.labels)]);
                j.push(json!({"name": n.name, "labels": n.labels}));
            }
            emit(ctx.format, t, j);
        }
        Cmd::Create { name, label } => {
            ns.create(CreateNamespaceRequest {
                namespace: Some(Namespace {
                    name,
                    labels: label.into_iter().collect(),
                }),
            })
            .await
            .map_err(Error::at("Namespaces.Create"))?;
        }
        Cmd::Rm { names } => {
            for name in names {
                ns.delete(DeleteNamespaceRequest { name: name.clone() })
                    .await
                    .map_err(Error::at("Namespaces.Delete"))?;
                println!("{name}");
            }
        }
    }
    Ok(0)
}
