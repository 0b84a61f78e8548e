//! [`Deferred`]: a gRPC service registered before the stores behind it are open.
//!
//! At start-up the content store, the snapshotters and the differ open on a blocking
//! thread (their databases' recovery after a kill -9 waits on the disk), while the tasks
//! reconnect to their shims. The services that need none of them (Version,
//! Introspection, Namespaces, Containers, Tasks, Events) serve as soon as the tasks are
//! back; the others are registered as `Deferred` and their calls wait until
//! [`Opener::open`] hands over the real service. If the stores never open (the opener
//! is dropped: start-up failed), a waiting call answers `Unavailable`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tonic::server::NamedService;
use tower::{Service, ServiceExt};

/// A service whose inner service arrives later.
pub struct Deferred<S> {
    ready: watch::Receiver<Option<S>>,
}

impl<S> Clone for Deferred<S> {
    fn clone(&self) -> Self {
        Self {
            ready: self.ready.clone(),
        }
    }
}

/// Hands the inner service to every clone of its [`Deferred`].
pub struct Opener<S> {
    tx: watch::Sender<Option<S>>,
}

impl<S> Opener<S> {
    /// From now on every call (waiting ones included) goes to `svc`.
    pub fn open(self, svc: S) {
        self.tx.send_replace(Some(svc));
    }
}

/// A service to register now and its opener.
pub fn deferred<S>() -> (Deferred<S>, Opener<S>) {
    let (tx, ready) = watch::channel(None);
    (Deferred { ready }, Opener { tx })
}

impl<S: NamedService> NamedService for Deferred<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, Req, RB> Service<Req> for Deferred<S>
where
    S: Service<Req, Response = http::Response<RB>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    Req: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let mut ready = self.ready.clone();
        Box::pin(async move {
            let svc = match ready.wait_for(Option::is_some).await {
                Ok(svc) => svc.clone(),
                Err(_) => None,
            };
            match svc {
                Some(svc) => svc.oneshot(req).await,
                None => Ok(tonic::Status::unavailable(format!(
                    "{}: the stores behind this service did not open",
                    S::NAME
                ))
                .into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers with its tag in a header.
    #[derive(Clone)]
    struct Tag(&'static str);

    impl NamedService for Tag {
        const NAME: &'static str = "test.Tag";
    }

    impl Service<u32> for Tag {
        type Response = http::Response<String>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: u32) -> Self::Future {
            std::future::ready(Ok(http::Response::new(format!("{}:{req}", self.0))))
        }
    }

    #[tokio::test]
    async fn a_call_waits_for_the_service_and_then_reaches_it() {
        let (svc, opener) = deferred::<Tag>();
        let early = tokio::spawn(svc.clone().oneshot(1));
        tokio::task::yield_now().await;
        assert!(!early.is_finished(), "answered before the service exists");
        opener.open(Tag("real"));
        let r = early.await.expect("join").expect("infallible");
        assert_eq!(r.body(), "real:1");
        let r = svc.oneshot(2).await.expect("infallible");
        assert_eq!(r.body(), "real:2");
    }

    #[tokio::test]
    async fn a_dropped_opener_answers_unavailable() {
        let (svc, opener) = deferred::<Tag>();
        let early = tokio::spawn(svc.clone().oneshot(1));
        drop(opener);
        let r = early.await.expect("join").expect("infallible");
        let status = tonic::Status::from_header_map(r.headers()).expect("a grpc status");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("test.Tag"), "{status:?}");
    }
}
