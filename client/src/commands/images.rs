//! `images ls|rm|tag|inspect|import|export|push`.

use std::path::PathBuf;

use berth_api::berth::images::v1::PushRequest;
use berth_api::containerd::services::images::v1::{
    CreateImageRequest, DeleteImageRequest, Image, UpdateImageRequest,
};
use berth_client::Error;
use serde_json::json;

use super::output::{Table, emit, human_size, print_json, short_digest, ts_ago};
use super::pull::Progress;
use super::run::find_image;
use super::{CmdResult, Ctx};
use berth_client::events::timestamp_text;

/// `images ls` arguments.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print names only
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter (containerd syntax), repeatable
    #[arg(long)]
    pub filter: Vec<String>,
}

/// Image verbs.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// List images
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove images
    #[command(visible_alias = "remove")]
    Rm {
        /// Image names
        #[arg(required = true)]
        names: Vec<String>,
        /// Wait until the garbage collector removed the content
        #[arg(long)]
        sync: bool,
    },
    /// Give an image another name
    Tag {
        /// Existing image
        source: String,
        /// New name
        target: String,
    },
    /// Show an image record, manifest and config as JSON
    Inspect {
        /// Image names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Import an OCI or docker archive
    Import {
        /// Archive path, `-` for stdin
        file: PathBuf,
        /// Name prefix for images without a name in the archive
        #[arg(long, default_value = "")]
        base_name: String,
        /// Do not unpack the layers into the snapshotter
        #[arg(long)]
        no_unpack: bool,
    },
    /// Export images as an OCI archive
    Export {
        /// Output path, `-` for stdout
        #[arg(short, long)]
        output: PathBuf,
        /// Image names
        #[arg(required = true)]
        names: Vec<String>,
        /// Only this platform ("os/arch"); default: all
        #[arg(long, default_value = "")]
        platform: String,
    },
    /// Push an image to a registry
    Push {
        /// Stored image
        name: String,
        /// Destination reference (default: the image's name)
        reference: Option<String>,
        /// Use plain HTTP instead of HTTPS
        #[arg(long)]
        plain_http: bool,
        /// Registry credentials USER:PASSWORD
        #[arg(long)]
        user: Option<String>,
        /// Print only the pushed digest
        #[arg(short, long)]
        quiet: bool,
    },
}

/// Runs an image verb.
pub async fn run(ctx: &Ctx, cmd: Cmd) -> CmdResult {
    let client = ctx.client().await?;
    match cmd {
        Cmd::Ls(args) => ls(ctx, &client, args).await?,
        Cmd::Rm { names, sync } => {
            for name in names {
                client
                    .images()
                    .delete(DeleteImageRequest {
                        name: name.clone(),
                        sync,
                    })
                    .await
                    .map_err(Error::at("Images.Delete"))?;
                println!("{name}");
            }
        }
        Cmd::Tag { source, target } => {
            let source = find_image(&client, &source).await?;
            let target = super::run::normalize_ref(&target);
            let src = client.get_image(&source).await?;
            let image = Image {
                name: target.clone(),
                labels: src.labels,
                target: src.target,
                ..Image::default()
            };
            let created = client
                .images()
                .create(CreateImageRequest {
                    image: Some(image.clone()),
                })
                .await;
            match created {
                Ok(_) => {}
                Err(s) if s.code() == tonic::Code::AlreadyExists => {
                    client
                        .images()
                        .update(UpdateImageRequest {
                            image: Some(image),
                            update_mask: None,
                        })
                        .await
                        .map_err(Error::at("Images.Update"))?;
                }
                Err(s) => return Err(Error::rpc("Images.Create", s).into()),
            }
            println!("{target}");
        }
        Cmd::Inspect { names } => {
            let mut out = Vec::new();
            for name in names {
                let name = find_image(&client, &name).await?;
                let r = client.resolve_image(&name).await?;
                let target = r.image.target.clone().unwrap_or_default();
                out.push(json!({
                    "name": r.image.name,
                    "labels": r.image.labels,
                    "target": {"mediaType": target.media_type, "digest": target.digest,
                               "size": target.size},
                    "created_at": timestamp_text(r.image.created_at.as_ref()),
                    "manifest_digest": r.manifest_digest,
                    "manifest": serde_json::to_value(&r.manifest).unwrap_or_default(),
                    "config_digest": r.config_digest,
                    "config": serde_json::to_value(&r.config).unwrap_or_default(),
                    "chain_id": r.chain_id(),
                }));
            }
            print_json(&serde_json::Value::Array(out));
        }
        Cmd::Import {
            file,
            base_name,
            no_unpack,
        } => {
            let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if file.as_os_str() == "-" {
                Box::new(tokio::io::stdin())
            } else {
                Box::new(
                    tokio::fs::File::open(&file)
                        .await
                        .map_err(|e| Error::io("cannot open", &file, e))?,
                )
            };
            let images = client
                .import(reader, base_name, ctx.snapshotter.clone(), !no_unpack)
                .await?;
            for i in images {
                let digest = i.target.map(|t| t.digest).unwrap_or_default();
                println!("{} {digest}", i.name);
            }
        }
        Cmd::Export {
            output,
            names,
            platform,
        } => {
            if output.as_os_str() == "-" {
                client
                    .export(names, platform, &mut tokio::io::stdout())
                    .await?;
            } else {
                let tmp = output.with_extension("partial");
                let mut f = tokio::fs::File::create(&tmp)
                    .await
                    .map_err(|e| Error::io("cannot create", &tmp, e))?;
                if let Err(e) = client.export(names, platform, &mut f).await {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(e.into());
                }
                tokio::fs::rename(&tmp, &output)
                    .await
                    .map_err(|e| Error::io("cannot write", &output, e))?;
            }
        }
        Cmd::Push {
            name,
            reference,
            plain_http,
            user,
            quiet,
        } => {
            let (username, password) = split_user(user.as_deref());
            let mut progress = Progress::new(quiet);
            let pushed = client
                .push(
                    PushRequest {
                        name,
                        r#ref: reference.unwrap_or_default(),
                        plain_http,
                        username,
                        password,
                    },
                    |b| progress.update(b),
                )
                .await;
            progress.finish();
            println!("{}", pushed?.digest);
        }
    }
    Ok(0)
}

/// `USER:PASSWORD` → the two strings (both empty when absent).
pub fn split_user(user: Option<&str>) -> (String, String) {
    match user.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => (String::new(), String::new()),
    }
}

async fn ls(ctx: &Ctx, client: &berth_client::Client, args: LsArgs) -> Result<(), Error> {
    let mut images = client.list_images(args.filter).await?;
    images.sort_by(|a, b| a.name.cmp(&b.name));
    if args.quiet {
        images.iter().for_each(|i| println!("{}", i.name));
        return Ok(());
    }
    let mut t = Table::new(&["NAME", "DIGEST", "SIZE", "CREATED"]);
    let mut j = Vec::new();
    for image in &images {
        let target = image.target.clone().unwrap_or_default();
        // Size needs the manifest; an image whose blobs are missing still lists.
        let size = match client.resolve_image(&image.name).await {
            Ok(r) => Some(r.size()),
            Err(e) => {
                tracing::debug!(image = %image.name, error = %e, "cannot resolve");
                None
            }
        };
        t.row(vec![
            image.name.clone(),
            short_digest(&target.digest),
            size.map_or_else(|| "-".to_string(), human_size),
            ts_ago(image.created_at.as_ref()),
        ]);
        j.push(json!({"name": image.name, "digest": target.digest,
                      "media_type": target.media_type, "size": size,
                      "labels": image.labels,
                      "created_at": timestamp_text(image.created_at.as_ref())}));
    }
    emit(ctx.format, t, j);
    Ok(())
}
