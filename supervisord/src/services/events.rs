//! Events: Subscribe (server stream, all namespaces unless filtered), Publish, Forward.

use berth_api::containerd::services::events::v1::{
    Envelope as PbEnvelope, ForwardRequest, PublishRequest, SubscribeRequest, events_server::Events,
};
use futures::StreamExt;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::{from_timestamp, namespace, parse_filters, status, to_timestamp};
use crate::events::{Envelope, Exchange};

#[derive(Debug, Clone)]
pub struct EventsService {
    events: Exchange,
}

impl EventsService {
    pub fn new(events: Exchange) -> Self {
        Self { events }
    }
}

fn to_pb(e: Envelope) -> PbEnvelope {
    PbEnvelope {
        timestamp: to_timestamp(e.timestamp),
        namespace: e.namespace,
        topic: e.topic,
        event: Some(e.event),
    }
}

#[tonic::async_trait]
impl Events for EventsService {
    async fn publish(&self, req: Request<PublishRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let event = r
            .event
            .ok_or_else(|| Status::invalid_argument("event must be set"))?;
        self.events.publish(&ns, &r.topic, event).map_err(status)?;
        Ok(Response::new(()))
    }

    async fn forward(&self, req: Request<ForwardRequest>) -> Result<Response<()>, Status> {
        let env = req
            .into_inner()
            .envelope
            .ok_or_else(|| Status::invalid_argument("envelope must be set"))?;
        let event = env
            .event
            .ok_or_else(|| Status::invalid_argument("envelope event must be set"))?;
        let timestamp = match env.timestamp.as_ref() {
            Some(t) => from_timestamp(Some(t)),
            None => std::time::SystemTime::now(),
        };
        self.events
            .forward(Envelope {
                timestamp,
                namespace: env.namespace,
                topic: env.topic,
                event,
            })
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<Response<BoxStream<PbEnvelope>>, Status> {
        let filter = parse_filters(&req.get_ref().filters)?;
        let stream = self.events.subscribe(filter).map(|e| Ok(to_pb(e)));
        Ok(Response::new(Box::pin(stream)))
    }
}
