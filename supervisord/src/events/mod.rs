//! The event exchange: an owned handle (no global) that services publish to and the
//! Events service streams from.
//!
//! Publishing never blocks: events go to a bounded broadcast channel; a subscriber that
//! falls more than [`BUFFER`] events behind loses the oldest ones (logged), as a slow
//! `ctr events` must not stall the daemon. Subscriptions see events from every namespace
//! unless their filters say otherwise (fields `topic`, `namespace`).
//!
//! A *tap* ([`Exchange::tap`]) sees each envelope of its topic synchronously, before any
//! subscriber can: the task table records an init's exit that way, so a client that
//! reacts to the event already finds the task STOPPED.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::{Stream, StreamExt};
use prost_types::Any;
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::filters::{Adaptor, Filter};
use crate::identifiers;

/// Events a subscriber may lag behind before losing some.
pub const BUFFER: usize = 1024;

/// One published event (containerd's `Envelope`).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub timestamp: SystemTime,
    pub namespace: String,
    pub topic: String,
    pub event: Any,
}

impl Adaptor for Envelope {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        match path {
            [f] if f == "topic" => Some(Cow::Borrowed(&self.topic)),
            [f] if f == "namespace" => Some(Cow::Borrowed(&self.namespace)),
            _ => None,
        }
    }
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("envelope topic {topic:?} must start with '/' and not end with one")]
    Topic { topic: String },
    #[error("envelope namespace: {0}")]
    Namespace(#[from] identifiers::InvalidIdentifier),
    #[error("envelope event must be set")]
    MissingEvent,
}

/// A tap: called with each envelope of its topic; returns whether to stay registered.
type TapFn = dyn Fn(&Envelope) -> bool + Send + Sync;

/// A tap with its topic.
type Tap = (String, Arc<TapFn>);

/// The registered taps.
#[derive(Clone, Default)]
struct Taps(Arc<Mutex<Vec<Tap>>>);

impl std::fmt::Debug for Taps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Taps({})", self.lock().len())
    }
}

impl Taps {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Tap>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Call the taps of `env`'s topic (outside the lock); drop those that are done.
    fn call(&self, env: &Envelope) {
        let hits: Vec<Arc<TapFn>> = self
            .lock()
            .iter()
            .filter(|(topic, _)| *topic == env.topic)
            .map(|(_, f)| f.clone())
            .collect();
        let done: Vec<Arc<TapFn>> = hits.into_iter().filter(|f| !f(env)).collect();
        if !done.is_empty() {
            self.lock()
                .retain(|(_, f)| !done.iter().any(|d| Arc::ptr_eq(d, f)));
        }
    }
}

/// The exchange handle: clone it freely.
#[derive(Debug, Clone)]
pub struct Exchange {
    tx: broadcast::Sender<Envelope>,
    closed: watch::Sender<bool>,
    taps: Taps,
}

impl Default for Exchange {
    fn default() -> Self {
        Self::new()
    }
}

fn validate_topic(topic: &str) -> Result<(), EventError> {
    let ok =
        topic.len() > 1 && topic.starts_with('/') && !topic.ends_with('/') && !topic.contains("//");
    if ok {
        Ok(())
    } else {
        Err(EventError::Topic {
            topic: topic.to_owned(),
        })
    }
}

impl Exchange {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(BUFFER);
        let (closed, _) = watch::channel(false);
        Self {
            tx,
            closed,
            taps: Taps::default(),
        }
    }

    /// Call `f` with every envelope of `topic` published from now on, in the
    /// publisher's call, before any subscriber sees it. `f` must be quick, must not
    /// publish, and returns whether it wants more (false: it is removed).
    pub fn tap(&self, topic: &str, f: impl Fn(&Envelope) -> bool + Send + Sync + 'static) {
        self.taps.lock().push((topic.to_owned(), Arc::new(f)));
    }

    /// End every subscription (daemon shutdown); later subscriptions end at once.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Publish an event now.
    pub fn publish(&self, namespace: &str, topic: &str, event: Any) -> Result<(), EventError> {
        self.forward(Envelope {
            timestamp: SystemTime::now(),
            namespace: namespace.to_owned(),
            topic: topic.to_owned(),
            event,
        })
    }

    /// Publish an event best-effort from a service that already did its work: a refused
    /// event is logged, not returned.
    pub fn emit(&self, namespace: &str, topic: &str, event: Any) {
        if let Err(error) = self.publish(namespace, topic, event) {
            tracing::warn!(%error, namespace, topic, "event not published");
        }
    }

    /// Forward an envelope as given (timestamp included).
    pub fn forward(&self, env: Envelope) -> Result<(), EventError> {
        validate_topic(&env.topic)?;
        identifiers::validate(&env.namespace)?;
        tracing::debug!(namespace = %env.namespace, topic = %env.topic, "event");
        self.taps.call(&env);
        // No subscribers is not an error.
        let _ = self.tx.send(env);
        Ok(())
    }

    /// Subscribe to every event published from now on that passes `filter`.
    /// The stream ends when the exchange is closed.
    pub fn subscribe(&self, filter: Filter) -> impl Stream<Item = Envelope> + Send + 'static {
        let mut closed = self.closed.subscribe();
        let until_closed = async move {
            // An error means the sender is gone: nothing more can be published either.
            let _ = closed.wait_for(|c| *c).await;
        };
        BroadcastStream::new(self.tx.subscribe())
            .take_until(until_closed)
            .filter_map(move |item| {
                let out = match item {
                    Ok(env) if filter.matches(&env) => Some(env),
                    Ok(_) => None,
                    Err(BroadcastStreamRecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "event subscriber lagged; events dropped");
                        None
                    }
                };
                std::future::ready(out)
            })
    }

    /// Number of live subscriptions (for tests and introspection).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(v: &[u8]) -> Any {
        Any {
            type_url: "containerd.events.NamespaceCreate".into(),
            value: v.to_vec(),
        }
    }

    #[tokio::test]
    async fn taps_see_their_topic_first_and_leave_when_done() {
        let ex = Exchange::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut sub = Box::pin(ex.subscribe(Filter::all()));
        let log = seen.clone();
        ex.tap("/tasks/exit", move |env| {
            let mut l = log.lock().expect("lock");
            l.push(env.event.value.clone());
            l.len() < 2 // wants two
        });
        for v in [b"1", b"2", b"3"] {
            ex.publish("ns", "/tasks/exit", any(v)).expect("publish");
            ex.publish("ns", "/tasks/start", any(b"x"))
                .expect("publish");
        }
        // Synchronous: recorded before anything was received.
        assert_eq!(*seen.lock().expect("lock"), [b"1".to_vec(), b"2".to_vec()]);
        assert_eq!(ex.taps.lock().len(), 0, "removed once done");
        assert_eq!(sub.next().await.expect("event").event.value, b"1");
    }

    #[tokio::test]
    async fn subscribers_get_filtered_events_in_order() {
        let ex = Exchange::new();
        let all = ex.subscribe(Filter::all());
        let only_b = ex.subscribe(Filter::parse("namespace==b").expect("filter"));
        let topics =
            ex.subscribe(Filter::parse_all(&["topic~=^/images/", "topic==/x/y"]).expect("filter"));
        tokio::pin!(all, only_b, topics);
        ex.publish("a", "/namespaces/create", any(b"1"))
            .expect("publish");
        ex.publish("b", "/images/create", any(b"2"))
            .expect("publish");
        ex.publish("b", "/x/y", any(b"3")).expect("publish");
        let got: Vec<_> = (&mut all).take(3).map(|e| e.event.value).collect().await;
        assert_eq!(got, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
        let got: Vec<_> = (&mut only_b).take(2).map(|e| e.topic).collect().await;
        assert_eq!(got, ["/images/create", "/x/y"]);
        let got: Vec<_> = (&mut topics).take(2).map(|e| e.namespace).collect().await;
        assert_eq!(got, ["b", "b"]);
    }

    #[tokio::test]
    async fn close_ends_subscriptions() {
        let ex = Exchange::new();
        let sub = ex.subscribe(Filter::all());
        assert_eq!(ex.subscribers(), 1);
        ex.close();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), sub.count()).await;
        assert_eq!(ended, Ok(0), "the stream ends once the exchange is closed");
        let late = ex.subscribe(Filter::all()).count();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), late).await;
        assert_eq!(ended, Ok(0));
    }

    #[test]
    fn bad_envelopes_are_refused() {
        let ex = Exchange::new();
        for t in ["", "/", "x", "/a/", "//a"] {
            assert!(
                matches!(ex.publish("n", t, any(b"")), Err(EventError::Topic { .. })),
                "{t}"
            );
        }
        assert!(matches!(
            ex.publish("bad..ns", "/a", any(b"")),
            Err(EventError::Namespace(_))
        ));
        assert!(
            ex.publish("n", "/a/b", any(b"")).is_ok(),
            "no subscribers is fine"
        );
    }
}
