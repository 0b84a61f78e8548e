//! `version`, `info`, `completion`.

use berth_api::containerd::services::introspection::v1::PluginsRequest;
use clap::CommandFactory;
use serde_json::json;

use super::output::{Table, emit, print_json};
use super::{CmdResult, Ctx};
use crate::cli::{Cli, Format};
use berth_client::Error;

/// `completion` arguments.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// Shell to generate for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `berthctl version`.
pub async fn version(ctx: &Ctx) -> CmdResult {
    let client_version = env!("CARGO_PKG_VERSION");
    let server = async {
        let client = ctx.client().await?;
        let v = client.version_info().await?;
        Ok::<_, super::exit::CliError>(v)
    }
    .await;
    match ctx.format {
        Format::Json => {
            let server = server?;
            print_json(&json!({
                "client": {"version": client_version},
                "server": {"version": server.version, "revision": server.revision},
            }));
        }
        Format::Table => {
            println!("Client:\n  Version:  {client_version}");
            let server = server?;
            println!(
                "\nServer:\n  Version:  {}\n  Revision: {}",
                server.version, server.revision
            );
        }
    }
    Ok(0)
}

/// `berthctl info`.
pub async fn info(ctx: &Ctx) -> CmdResult {
    let client = ctx.client().await?;
    let version = client.version_info().await?;
    let server = client
        .introspection()
        .server(())
        .await
        .map_err(Error::at("Introspection.Server"))?
        .into_inner();
    let plugins = client
        .introspection()
        .plugins(PluginsRequest { filters: vec![] })
        .await
        .map_err(Error::at("Introspection.Plugins"))?
        .into_inner()
        .plugins;
    match ctx.format {
        Format::Json => print_json(&json!({
            "version": version.version,
            "revision": version.revision,
            "uuid": server.uuid,
            "pid": server.pid,
            "address": ctx.address,
            "namespace": ctx.namespace,
            "plugins": plugins.iter().map(|p| json!({
                "type": p.r#type, "id": p.id,
                "status": if p.init_err.is_some() { "error" } else { "ok" },
            })).collect::<Vec<_>>(),
        })),
        Format::Table => {
            println!("Server version: {} ({})", version.version, version.revision);
            println!("UUID:           {}", server.uuid);
            println!("PID:            {}", server.pid);
            println!("Address:        {}", ctx.address.display());
            println!("Namespace:      {}", ctx.namespace);
            println!("Plugins:");
            let mut t = Table::new(&["TYPE", "ID", "STATUS"]);
            for p in &plugins {
                let status = match &p.init_err {
                    Some(e) => format!("error: {}", e.message),
                    None => "ok".to_string(),
                };
                t.row(vec![p.r#type.clone(), p.id.clone(), status]);
            }
            emit(Format::Table, t, vec![]);
        }
    }
    Ok(0)
}

/// `berthctl completion SHELL`.
pub fn completion(args: CompletionArgs) -> CmdResult {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "berthctl", &mut script);
    super::output::print_text(&String::from_utf8_lossy(&script));
    Ok(0)
}
