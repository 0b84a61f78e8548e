//! Introspection: the server's persistent UUID and berth's plugin list.

use std::borrow::Cow;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_api::containerd::services::introspection::v1::{
    Plugin, PluginsRequest, PluginsResponse, ServerResponse, introspection_server::Introspection,
};
use berth_api::google::rpc::Status as RpcStatus;
use tonic::{Request, Response, Status};

use crate::filters::Adaptor;

/// The file in the root holding the server UUID.
pub const UUID_FILE: &str = "uuid";

/// One plugin berth runs (or lists as not built), in containerd's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// containerd plugin type, e.g. `io.containerd.grpc.v1`.
    pub kind: String,
    pub id: String,
    pub requires: Vec<String>,
    pub capabilities: Vec<String>,
    /// `Some(reason)` when the plugin is not available; listed as containerd lists a
    /// plugin that failed to initialise.
    pub init_err: Option<String>,
}

impl PluginInfo {
    pub fn ok(kind: &str, id: &str, requires: &[&str]) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            requires: requires.iter().map(|s| (*s).to_owned()).collect(),
            capabilities: Vec::new(),
            init_err: None,
        }
    }

    pub fn not_built(kind: &str, id: &str) -> Self {
        Self {
            init_err: Some(format!("{id} is not implemented in berth yet")),
            ..Self::ok(kind, id, &[])
        }
    }
}

impl Adaptor for PluginInfo {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        match path {
            [f] if f == "type" => Some(Cow::Borrowed(&self.kind)),
            [f] if f == "id" => Some(Cow::Borrowed(&self.id)),
            [f, c] if f == "capabilities" => self
                .capabilities
                .iter()
                .find(|x| *x == c)
                .map(|x| Cow::Borrowed(x.as_str())),
            _ => None,
        }
    }
}

/// Read the UUID in `root/uuid`, creating it on first start.
pub fn load_or_create_uuid(root: &Path) -> std::io::Result<String> {
    let path = root.join(UUID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => return Ok(s.trim().to_owned()),
        Ok(_) => tracing::warn!(path = %path.display(), "replacing an invalid uuid file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = uuid::Uuid::new_v4().to_string();
    let tmp = root.join(format!("{UUID_FILE}.tmp"));
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

#[derive(Debug, Clone)]
pub struct IntrospectionService {
    uuid: String,
    plugins: Vec<PluginInfo>,
}

impl IntrospectionService {
    pub fn new(uuid: String, plugins: Vec<PluginInfo>) -> Self {
        Self { uuid, plugins }
    }
}

fn to_proto(p: &PluginInfo) -> Plugin {
    Plugin {
        r#type: p.kind.clone(),
        id: p.id.clone(),
        requires: p.requires.clone(),
        capabilities: p.capabilities.clone(),
        init_err: p.init_err.as_ref().map(|m| RpcStatus {
            code: tonic::Code::Unimplemented as i32,
            message: m.clone(),
            details: Vec::new(),
        }),
        ..Plugin::default()
    }
}

#[tonic::async_trait]
impl Introspection for IntrospectionService {
    async fn plugins(
        &self,
        req: Request<PluginsRequest>,
    ) -> Result<Response<PluginsResponse>, Status> {
        let filter = super::parse_filters(&req.get_ref().filters)?;
        let plugins = self
            .plugins
            .iter()
            .filter(|p| filter.matches(*p))
            .map(to_proto)
            .collect();
        Ok(Response::new(PluginsResponse { plugins }))
    }

    async fn server(&self, _req: Request<()>) -> Result<Response<ServerResponse>, Status> {
        let pidns = std::fs::metadata("/proc/self/ns/pid")
            .map(|m| m.ino())
            .unwrap_or(0);
        Ok(Response::new(ServerResponse {
            uuid: self.uuid.clone(),
            pid: u64::from(std::process::id()),
            pidns,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create_uuid(dir.path()).expect("create");
        assert!(uuid::Uuid::parse_str(&a).is_ok());
        assert_eq!(load_or_create_uuid(dir.path()).expect("read"), a);
        std::fs::write(dir.path().join(UUID_FILE), "garbage").expect("write");
        let b = load_or_create_uuid(dir.path()).expect("replace");
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn plugins_filter_by_type_and_id() {
        let svc = IntrospectionService::new(
            "u".into(),
            vec![
                PluginInfo::ok("io.containerd.metadata.v1", "redb", &[]),
                PluginInfo::ok("io.containerd.grpc.v1", "version", &[]),
                PluginInfo::not_built("io.containerd.grpc.v1", "tasks"),
            ],
        );
        let ids = |f: &'static str| {
            let svc = svc.clone();
            async move {
                let req = Request::new(PluginsRequest {
                    filters: vec![f.into()],
                });
                svc.plugins(req)
                    .await
                    .expect("plugins")
                    .into_inner()
                    .plugins
                    .into_iter()
                    .map(|p| p.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(ids("").await, ["redb", "version", "tasks"]);
        assert_eq!(
            ids("type==io.containerd.grpc.v1").await,
            ["version", "tasks"]
        );
        assert_eq!(ids("id==redb").await, ["redb"]);
        let all = svc
            .plugins(Request::new(PluginsRequest::default()))
            .await
            .expect("plugins")
            .into_inner()
            .plugins;
        assert!(all[2].init_err.is_some() && all[0].init_err.is_none());
    }
}
