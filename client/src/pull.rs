//! Daemon-side image transfers over `berth.images.v1.Transfer`: pull and
//! push stream progress, import and export stream the archive.

use berth_api::berth::images::v1::{
    BlobProgress, ExportRequest, Image as TransferImage, ImportChunk, PullProgress, PullRequest,
    PushRequest, TransferStatus,
};
use berth_api::containerd::types::Descriptor;
use futures::StreamExt;

use crate::client::Client;
use crate::error::{Error, Result};

/// Bytes per import chunk (well under the 16 MiB message limit).
pub const CHUNK: usize = 1 << 20;

/// A status as a short word for plain progress lines.
pub fn status_word(status: i32) -> &'static str {
    match TransferStatus::try_from(status).unwrap_or(TransferStatus::Waiting) {
        TransferStatus::Waiting => "waiting",
        TransferStatus::Downloading => "downloading",
        TransferStatus::Downloaded => "downloaded",
        TransferStatus::Unpacking => "unpacking",
        TransferStatus::Done => "done",
        TransferStatus::Exists => "exists",
    }
}

impl Client {
    /// Pulls `request.ref`, calling `progress` for every blob update;
    /// returns the stored image from the final message.
    ///
    /// ```no_run
    /// # async fn demo(client: berth_client::Client) -> berth_client::Result<()> {
    /// use berth_api::berth::images::v1::PullRequest;
    ///
    /// let image = client
    ///     .pull(
    ///         PullRequest { r#ref: "127.0.0.1:5000/busybox:latest".into(), unpack: true,
    ///                       ..Default::default() },
    ///         |blob| println!("{} {}/{}", blob.digest, blob.offset, blob.total),
    ///     )
    ///     .await?;
    /// println!("pulled {}", image.name);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn pull(
        &self,
        request: PullRequest,
        mut progress: impl FnMut(&BlobProgress),
    ) -> Result<TransferImage> {
        let mut stream = self
            .transfer()
            .pull(request)
            .await
            .map_err(Error::at("Transfer.Pull"))?
            .into_inner();
        while let Some(msg) = stream.next().await {
            let PullProgress { blobs, image } = msg.map_err(Error::at("Transfer.Pull"))?;
            blobs.iter().for_each(&mut progress);
            if let Some(image) = image {
                return Ok(image);
            }
        }
        Err(Error::Truncated("Transfer.Pull"))
    }

    /// Pushes a stored image; returns the pushed root descriptor.
    pub async fn push(
        &self,
        request: PushRequest,
        mut progress: impl FnMut(&BlobProgress),
    ) -> Result<Descriptor> {
        let mut stream = self
            .transfer()
            .push(request)
            .await
            .map_err(Error::at("Transfer.Push"))?
            .into_inner();
        while let Some(msg) = stream.next().await {
            let msg = msg.map_err(Error::at("Transfer.Push"))?;
            msg.blobs.iter().for_each(&mut progress);
            if let Some(pushed) = msg.pushed {
                return Ok(pushed);
            }
        }
        Err(Error::Truncated("Transfer.Push"))
    }

    /// Imports an archive read from `reader`; returns the stored images.
    pub async fn import(
        &self,
        mut reader: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        base_name: String,
        snapshotter: String,
        unpack: bool,
    ) -> Result<Vec<TransferImage>> {
        use tokio::io::AsyncReadExt;
        let (tx, rx) = tokio::sync::mpsc::channel::<ImportChunk>(4);
        let feeder = tokio::spawn(async move {
            let mut first = Some((base_name, snapshotter, unpack));
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = reader.read(&mut buf).await?;
                buf.truncate(n);
                let (base_name, snapshotter, unpack) = first.take().unwrap_or_default();
                if n == 0 && base_name.is_empty() && snapshotter.is_empty() {
                    return Ok::<(), std::io::Error>(());
                }
                let last = n == 0;
                if tx
                    .send(ImportChunk {
                        data: buf,
                        base_name,
                        snapshotter,
                        unpack,
                    })
                    .await
                    .is_err()
                    || last
                {
                    return Ok(());
                }
            }
        });
        let resp = self
            .transfer()
            .import(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
        let fed = feeder.await;
        let resp = resp.map_err(Error::at("Transfer.Import"))?;
        if let Ok(Err(e)) = fed {
            return Err(Error::io("cannot read archive", "<input>", e));
        }
        Ok(resp.into_inner().images)
    }

    /// Exports `names` as an OCI archive, writing it to `writer`.
    pub async fn export(
        &self,
        names: Vec<String>,
        platform: String,
        writer: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut stream = self
            .transfer()
            .export(ExportRequest { names, platform })
            .await
            .map_err(Error::at("Transfer.Export"))?
            .into_inner();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(Error::at("Transfer.Export"))?;
            writer
                .write_all(&chunk.data)
                .await
                .map_err(|e| Error::io("cannot write archive", "<output>", e))?;
        }
        writer
            .flush()
            .await
            .map_err(|e| Error::io("cannot write archive", "<output>", e))
    }
}
