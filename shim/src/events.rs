//! Task events to berthd: an ordered queue drained by one forwarder that
//! calls berthd's `containerd.services.events.v1.Events/Forward`, retrying
//! each envelope with exponential backoff until it is delivered (berthd may
//! be down or restarting), so the contract's order (Create → Start → Exit →
//! Delete; ExecAdded → ExecStarted → Exit) holds on the wire.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use berth_api::any::pack;
use berth_api::containerd::services::events::v1::events_client::EventsClient;
use berth_api::containerd::services::events::v1::{Envelope, ForwardRequest};
use berth_api::metadata::NAMESPACE_HEADER;
use tokio::sync::{Notify, mpsc};
use tonic::transport::Channel;

/// First retry delay.
const BACKOFF_START: Duration = Duration::from_millis(20);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// `/tasks/*` topics.
pub mod topic {
    /// TaskCreate.
    pub const CREATE: &str = "/tasks/create";
    /// TaskStart.
    pub const START: &str = "/tasks/start";
    /// TaskExit.
    pub const EXIT: &str = "/tasks/exit";
    /// TaskDelete.
    pub const DELETE: &str = "/tasks/delete";
    /// TaskOOM.
    pub const OOM: &str = "/tasks/oom";
    /// TaskExecAdded.
    pub const EXEC_ADDED: &str = "/tasks/exec-added";
    /// TaskExecStarted.
    pub const EXEC_STARTED: &str = "/tasks/exec-started";
    /// TaskPaused.
    pub const PAUSED: &str = "/tasks/paused";
    /// TaskResumed.
    pub const RESUMED: &str = "/tasks/resumed";
}

struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

/// Cheap handle that queues events.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::UnboundedSender<Envelope>,
    namespace: String,
    pending: Arc<Pending>,
}

/// The receiving end of the queue, drained by [`Forwarder::run`] (or read
/// directly by tests).
pub struct Forwarder {
    rx: mpsc::UnboundedReceiver<Envelope>,
    pending: Arc<Pending>,
}

/// `google.protobuf.Timestamp` of a system time.
pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

impl Publisher {
    /// A queue for events of `namespace`.
    pub fn new(namespace: &str) -> (Publisher, Forwarder) {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(Pending {
            count: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        (
            Publisher {
                tx,
                namespace: namespace.to_owned(),
                pending: pending.clone(),
            },
            Forwarder { rx, pending },
        )
    }

    /// Queues `msg` under `topic`, stamped now.
    pub fn publish<M: prost::Name>(&self, topic: &str, msg: &M) {
        let env = Envelope {
            timestamp: Some(timestamp(SystemTime::now())),
            namespace: self.namespace.clone(),
            topic: topic.to_owned(),
            event: Some(pack(msg)),
        };
        tracing::debug!(topic, "event queued");
        self.pending.count.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(env).is_err() {
            self.pending.count.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(topic, "event queue closed, event dropped");
        }
    }

    /// Waits until every queued event was delivered, at most `limit`.
    /// Returns whether the queue is empty.
    pub async fn flush(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let idle = self.pending.idle.notified();
                if self.pending.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

impl Forwarder {
    /// The next queued envelope (tests).
    pub fn try_next(&mut self) -> Option<Envelope> {
        let env = self.rx.try_recv().ok()?;
        self.delivered();
        Some(env)
    }

    fn delivered(&self) {
        if self.pending.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.pending.idle.notify_waiters();
        }
    }

    /// Forwards envelopes to berthd at `address` (a socket path or
    /// `unix://` URI), one at a time, each retried until delivered.
    pub async fn run(mut self, address: String) {
        let channel = connect_lazy(crate::paths::socket_of(&address));
        let mut client = EventsClient::new(channel);
        while let Some(env) = self.rx.recv().await {
            let mut delay = BACKOFF_START;
            loop {
                let mut req = tonic::Request::new(ForwardRequest {
                    envelope: Some(env.clone()),
                });
                if let Ok(ns) = env.namespace.parse() {
                    req.metadata_mut().insert(NAMESPACE_HEADER, ns);
                }
                match client.forward(req).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::debug!(topic = %env.topic, error = %e, ?delay, "forward failed, retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(BACKOFF_MAX);
                    }
                }
            }
            tracing::debug!(topic = %env.topic, "event forwarded");
            self.delivered();
        }
    }
}

/// A lazily connecting channel to a unix socket; every failed call makes
/// the next one reconnect.
pub fn connect_lazy(socket: PathBuf) -> Channel {
    berth_api::transport::connect_unix_lazy(berth_api::transport::unix_endpoint(), socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::any::unpack;
    use berth_api::containerd::events::{TaskExit, TaskStart};

    #[tokio::test]
    async fn events_keep_order_and_flush_tracks_delivery() {
        let (p, mut f) = Publisher::new("ns1");
        p.publish(
            topic::START,
            &TaskStart {
                container_id: "c".into(),
                pid: 1,
            },
        );
        p.publish(
            topic::EXIT,
            &TaskExit {
                container_id: "c".into(),
                exit_status: 3,
                ..Default::default()
            },
        );
        assert!(!p.flush(Duration::from_millis(1)).await);
        let a = f.try_next().expect("first");
        assert_eq!(a.topic, "/tasks/start");
        assert_eq!(a.namespace, "ns1");
        let b = f.try_next().expect("second");
        assert_eq!(b.topic, "/tasks/exit");
        let exit: TaskExit = unpack(b.event.as_ref().expect("event")).expect("TaskExit");
        assert_eq!(exit.exit_status, 3);
        assert!(p.flush(Duration::from_millis(1)).await);
    }

    #[tokio::test]
    async fn forwarder_retries_until_berthd_listens() {
        use berth_api::containerd::services::events::v1::events_server::{Events, EventsServer};
        use tokio_stream::wrappers::UnixListenerStream;

        struct Sink(mpsc::UnboundedSender<Envelope>);
        #[tonic::async_trait]
        impl Events for Sink {
            async fn forward(
                &self,
                req: tonic::Request<ForwardRequest>,
            ) -> Result<tonic::Response<()>, tonic::Status> {
                let env = req.into_inner().envelope.expect("envelope");
                let _ = self.0.send(env);
                Ok(tonic::Response::new(()))
            }
        }

        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("berthd.sock");
        let (p, f) = Publisher::new("ns");
        p.publish(topic::START, &TaskStart::default());
        p.publish(topic::EXIT, &TaskExit::default());
        tokio::spawn(f.run(sock.display().to_string()));
        // berthd is down: nothing can be delivered yet.
        assert!(!p.flush(Duration::from_millis(100)).await);
        let listener = tokio::net::UnixListener::bind(&sock).expect("bind");
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(EventsServer::new(Sink(tx)))
                .serve_with_incoming(UnixListenerStream::new(listener)),
        );
        assert!(
            p.flush(Duration::from_secs(10)).await,
            "delivered after retry"
        );
        assert_eq!(rx.recv().await.expect("one").topic, "/tasks/start");
        assert_eq!(rx.recv().await.expect("two").topic, "/tasks/exit");
    }
}
