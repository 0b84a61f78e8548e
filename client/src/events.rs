//! Events: subscribing, and turning envelopes into JSON with the event
//! payload decoded by type URL (through berth-api's descriptor set).

use std::sync::OnceLock;

use berth_api::containerd::services::events::v1::{Envelope, SubscribeRequest};
use futures::{Stream, StreamExt};
use prost_reflect::{DescriptorPool, DynamicMessage, Value as ReflectValue};
use serde_json::{Value, json};

use crate::client::Client;
use crate::error::{Error, Result};

impl Client {
    /// Subscribes to events matching any of `filters` (containerd's filter
    /// syntax, e.g. `topic~="/tasks/"`; empty: everything, all namespaces).
    ///
    /// ```no_run
    /// # async fn demo(client: berth_client::Client) -> berth_client::Result<()> {
    /// use futures::StreamExt;
    ///
    /// let mut events = client.subscribe(vec![r#"topic=="/tasks/exit""#.into()]).await?;
    /// while let Some(envelope) = events.next().await {
    ///     println!("{}", berth_client::events::envelope_json(&envelope?));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn subscribe(
        &self,
        filters: Vec<String>,
    ) -> Result<impl Stream<Item = Result<Envelope>> + use<>> {
        let stream = self
            .events()
            .subscribe(SubscribeRequest { filters })
            .await
            .map_err(Error::at("Events.Subscribe"))?
            .into_inner();
        Ok(stream.map(|item| item.map_err(Error::at("Events.Subscribe"))))
    }
}

fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(berth_api::FILE_DESCRIPTOR_SET).ok())
        .as_ref()
}

/// The payload of an `Any` as JSON (proto3 JSON mapping), or `None` when its
/// type is unknown or the bytes do not decode.
pub fn any_json(any: &prost_types::Any) -> Option<Value> {
    let name = berth_api::any::type_name(&any.type_url);
    let desc = pool()?.get_message_by_name(name)?;
    let mut msg = DynamicMessage::decode(desc, any.value.as_slice()).ok()?;
    prefix_any_urls(&mut msg);
    serde_json::to_value(&msg).ok()
}

/// Gives nested `Any`s a `type.googleapis.com/` prefix: containerd uses
/// bare names, which the JSON mapping cannot resolve.
fn prefix_any_urls(msg: &mut DynamicMessage) {
    if prost_reflect::ReflectMessage::descriptor(msg).full_name() == "google.protobuf.Any" {
        if let Some(ReflectValue::String(url)) = msg.get_field_by_name_mut("type_url")
            && !url.contains('/')
        {
            *url = format!("type.googleapis.com/{url}");
        }
        return;
    }
    for (_, value) in msg.fields_mut() {
        prefix_value(value);
    }
}

fn prefix_value(value: &mut ReflectValue) {
    match value {
        ReflectValue::Message(m) => prefix_any_urls(m),
        ReflectValue::List(items) => items.iter_mut().for_each(prefix_value),
        ReflectValue::Map(map) => map.values_mut().for_each(prefix_value),
        _ => {}
    }
}

/// RFC 3339 text of a protobuf timestamp.
pub fn timestamp_text(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| {
        let secs = u64::try_from(t.seconds).ok()?;
        let time = std::time::UNIX_EPOCH
            + std::time::Duration::new(secs, u32::try_from(t.nanos).unwrap_or(0));
        Some(humantime::format_rfc3339_nanos(time).to_string())
    })
    .unwrap_or_default()
}

/// One envelope as a JSON object: timestamp, namespace, topic, type and the
/// decoded event (`null` when undecodable).
pub fn envelope_json(env: &Envelope) -> Value {
    json!({
        "timestamp": timestamp_text(env.timestamp.as_ref()),
        "namespace": env.namespace,
        "topic": env.topic,
        "type": env.event.as_ref().map(|e| e.type_url.clone()).unwrap_or_default(),
        "event": env.event.as_ref().and_then(any_json).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::containerd::events::TaskExit;

    #[test]
    fn envelopes_decode_their_payload() {
        let env = Envelope {
            timestamp: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            namespace: "default".into(),
            topic: "/tasks/exit".into(),
            event: Some(berth_api::any::pack(&TaskExit {
                container_id: "c1".into(),
                id: "c1".into(),
                pid: 42,
                exit_status: 3,
                exited_at: None,
            })),
        };
        let v = envelope_json(&env);
        assert_eq!(v["topic"], "/tasks/exit");
        assert_eq!(v["type"], "containerd.events.TaskExit");
        assert_eq!(v["event"]["containerId"], "c1");
        assert_eq!(v["event"]["exitStatus"], 3);
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.000000005Z");
    }

    #[test]
    fn nested_bare_anys_decode() {
        use berth_api::containerd::events::{ContainerCreate, container_create::Runtime};
        let create = ContainerCreate {
            id: "c1".into(),
            image: "img".into(),
            runtime: Some(Runtime {
                name: "io.containerd.runc.v2".into(),
                options: Some(berth_api::any::pack(
                    &berth_api::containerd::runc::v1::Options::default(),
                )),
            }),
        };
        let v = any_json(&berth_api::any::pack(&create)).expect("decodes");
        assert_eq!(v["id"], "c1");
        assert_eq!(v["runtime"]["name"], "io.containerd.runc.v2");
        assert_eq!(
            v["runtime"]["options"]["@type"],
            "type.googleapis.com/containerd.runc.v1.Options"
        );
    }

    #[test]
    fn unknown_payloads_are_null() {
        let env = Envelope {
            event: Some(prost_types::Any {
                type_url: "example.Unknown".into(),
                value: vec![1, 2, 3],
            }),
            ..Envelope::default()
        };
        assert_eq!(envelope_json(&env)["event"], Value::Null);
        assert_eq!(timestamp_text(None), "");
    }
}
