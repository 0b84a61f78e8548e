//! `pull`: Transfer.Pull with a progress bar per blob on a terminal, plain
//! lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use berth_api::berth::images::v1::{BlobProgress, PullRequest, TransferStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::images::split_user;
use super::output::short_digest;
use super::{CmdResult, Ctx};
use berth_client::pull::status_word;

/// `pull` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference, e.g. 127.0.0.1:5000/busybox:latest
    pub reference: String,
    /// Print only the image name and digest
    #[arg(short, long)]
    pub quiet: bool,
    /// Use plain HTTP instead of HTTPS (loopback registries need no flag)
    #[arg(long)]
    pub plain_http: bool,
    /// Platform "os/arch[/variant]" (default: this host)
    #[arg(long, default_value = "")]
    pub platform: String,
    /// Registry credentials USER:PASSWORD
    #[arg(long)]
    pub user: Option<String>,
    /// Do not unpack the layers into the snapshotter
    #[arg(long)]
    pub no_unpack: bool,
}

/// Shows transfer progress: bars on a terminal, lines otherwise.
pub struct Progress {
    quiet: bool,
    bars: Option<MultiProgress>,
    blobs: HashMap<String, ProgressBar>,
    last: HashMap<String, i32>,
}

impl Progress {
    /// Bars when stdout is a terminal and not `quiet`.
    pub fn new(quiet: bool) -> Progress {
        let bars = (!quiet && std::io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Progress {
            quiet,
            bars,
            blobs: HashMap::new(),
            last: HashMap::new(),
        }
    }

    /// One blob's update.
    pub fn update(&mut self, blob: &BlobProgress) {
        if self.quiet {
            return;
        }
        let Some(bars) = &self.bars else {
            // Plain output: one line per status change.
            if self.last.insert(blob.digest.clone(), blob.status) != Some(blob.status) {
                println!("{}", plain_line(blob));
            }
            return;
        };
        let bar = self.blobs.entry(blob.digest.clone()).or_insert_with(|| {
            let bar = bars.add(ProgressBar::new(blob.total.max(0) as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:12} {msg:11} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(short_digest(&blob.digest));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if blob.total > 0 {
            bar.set_length(blob.total as u64);
        }
        bar.set_position(blob.offset.max(0) as u64);
        bar.set_message(status_word(blob.status));
        let status = TransferStatus::try_from(blob.status).unwrap_or(TransferStatus::Waiting);
        if matches!(status, TransferStatus::Done | TransferStatus::Exists) {
            if blob.total > 0 {
                bar.set_position(blob.total as u64);
            }
            bar.finish();
        }
    }

    /// Stops every bar.
    pub fn finish(&mut self) {
        for bar in self.blobs.values() {
            bar.abandon();
        }
    }
}

/// `abcdef012345: downloading 1.2MB/3.4MB`.
pub fn plain_line(blob: &BlobProgress) -> String {
    use super::output::human_size;
    let status = TransferStatus::try_from(blob.status).unwrap_or(TransferStatus::Waiting);
    let size = match status {
        TransferStatus::Downloading if blob.total > 0 => {
            format!(" {}/{}", human_size(blob.offset), human_size(blob.total))
        }
        TransferStatus::Downloaded | TransferStatus::Done if blob.total > 0 => {
            format!(" {}", human_size(blob.total))
        }
        _ => String::new(),
    };
    format!(
        "{}: {}{size}",
        short_digest(&blob.digest),
        status_word(blob.status)
    )
}

/// Pulls and unpacks an image.
pub async fn run(ctx: &Ctx, args: Args) -> CmdResult {
    let client = ctx.client().await?;
    let (username, password) = split_user(args.user.as_deref());
    let mut progress = Progress::new(args.quiet);
    let result = client
        .pull(
            PullRequest {
                r#ref: args.reference,
                platform: args.platform,
                snapshotter: ctx.snapshotter.clone(),
                plain_http: args.plain_http,
                unpack: !args.no_unpack,
                labels: HashMap::new(),
                username,
                password,
            },
            |b| progress.update(b),
        )
        .await;
    progress.finish();
    let image = result?;
    let digest = image.target.map(|t| t.digest).unwrap_or_default();
    println!("{} {digest}", image.name);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_show_status_and_bytes() {
        let b = BlobProgress {
            digest: "sha256:0123456789abcdef".into(),
            media_type: String::new(),
            offset: 1500,
            total: 3000,
            status: TransferStatus::Downloading as i32,
        };
        assert_eq!(plain_line(&b), "0123456789ab: downloading 1.5kB/3kB");
        let done = BlobProgress {
            total: 0,
            status: TransferStatus::Exists as i32,
            ..b.clone()
        };
        assert_eq!(plain_line(&done), "0123456789ab: exists");
        let finished = BlobProgress {
            total: 3000,
            offset: 0,
            status: TransferStatus::Done as i32,
            ..done.clone()
        };
        assert_eq!(plain_line(&finished), "0123456789ab: done 3kB");
        let waiting = BlobProgress {
            status: TransferStatus::Waiting as i32,
            ..finished
        };
        assert_eq!(plain_line(&waiting), "0123456789ab: waiting");
    }
}
