//! Every RPC of the 11 containerd v1 services answers: a real answer (which may be an
//! error such as NotFound for a missing object) or Unimplemented — never a hang, an
//! internal error or a dropped connection.

use berth_api::containerd::services::containers::v1::{
    self as containers, containers_client::ContainersClient,
};
use berth_api::containerd::services::content::v1::{
    self as content, content_client::ContentClient,
};
use berth_api::containerd::services::diff::v1::{self as diff, diff_client::DiffClient};
use berth_api::containerd::services::events::v1::{self as events, events_client::EventsClient};
use berth_api::containerd::services::images::v1::{self as images, images_client::ImagesClient};
use berth_api::containerd::services::introspection::v1::{
    self as introspection, introspection_client::IntrospectionClient,
};
use berth_api::containerd::services::leases::v1::{self as leases, leases_client::LeasesClient};
use berth_api::containerd::services::namespaces::v1::{
    self as namespaces, namespaces_client::NamespacesClient,
};
use berth_api::containerd::services::snapshots::v1::{
    self as snapshots, snapshots_client::SnapshotsClient,
};
use berth_api::containerd::services::tasks::v1::{self as tasks, tasks_client::TasksClient};
use berth_api::containerd::services::version::v1::version_client::VersionClient;
use tonic::{Code, Request, Status};

use crate::{TestDaemon, ns, within};

/// RPC count per service: Version 1, Introspection 2, Namespaces 5, Leases 6, Content 9,
/// Images 5, Diff 2, Snapshots 10, Containers 6, Tasks 17, Events 3.
const TOTAL_RPCS: usize = 66;

/// Codes a real answer may carry for the (mostly empty) requests sent here.
const ANSWER_CODES: [Code; 6] = [
    Code::NotFound,
    Code::AlreadyExists,
    Code::InvalidArgument,
    Code::FailedPrecondition,
    Code::OutOfRange,
    Code::Unimplemented,
];

#[tokio::test]
async fn every_rpc_of_the_eleven_services_answers() {
    let d = TestDaemon::start().await;
    let ch = d.channel().await;
    let mut seen: Vec<(&'static str, Result<(), Status>)> = Vec::new();
    macro_rules! rpc {
        ($name:literal, $call:expr) => {{
            let r = within($name, $call).await.map(|_| ());
            seen.push(($name, r));
        }};
    }

    let mut c = VersionClient::new(ch.clone());
    rpc!("Version.Version", c.version(Request::new(())));

    let mut c = IntrospectionClient::new(ch.clone());
    rpc!(
        "Introspection.Plugins",
        c.plugins(introspection::PluginsRequest::default())
    );
    rpc!("Introspection.Server", c.server(Request::new(())));

    let mut c = NamespacesClient::new(ch.clone());
    let n = || namespaces::Namespace {
        name: "every-rpc".into(),
        ..Default::default()
    };
    rpc!(
        "Namespaces.Create",
        c.create(ns(namespaces::CreateNamespaceRequest {
            namespace: Some(n())
        }))
    );
    rpc!(
        "Namespaces.Get",
        c.get(ns(namespaces::GetNamespaceRequest {
            name: "every-rpc".into()
        }))
    );
    rpc!(
        "Namespaces.List",
        c.list(ns(namespaces::ListNamespacesRequest::default()))
    );
    rpc!(
        "Namespaces.Update",
        c.update(ns(namespaces::UpdateNamespaceRequest {
            namespace: Some(n()),
            update_mask: None
        }))
    );
    rpc!(
        "Namespaces.Delete",
        c.delete(ns(namespaces::DeleteNamespaceRequest {
            name: "every-rpc".into()
        }))
    );

    let mut c = LeasesClient::new(ch.clone());
    let res = || {
        Some(leases::Resource {
            id: "k".into(),
            r#type: "ingests".into(),
        })
    };
    rpc!(
        "Leases.Create",
        c.create(ns(leases::CreateRequest {
            id: "l1".into(),
            ..Default::default()
        }))
    );
    rpc!("Leases.List", c.list(ns(leases::ListRequest::default())));
    rpc!(
        "Leases.AddResource",
        c.add_resource(ns(leases::AddResourceRequest {
            id: "l1".into(),
            resource: res()
        }))
    );
    rpc!(
        "Leases.ListResources",
        c.list_resources(ns(leases::ListResourcesRequest { id: "l1".into() }))
    );
    rpc!(
        "Leases.DeleteResource",
        c.delete_resource(ns(leases::DeleteResourceRequest {
            id: "l1".into(),
            resource: res()
        }))
    );
    rpc!(
        "Leases.Delete",
        c.delete(ns(leases::DeleteRequest {
            id: "l1".into(),
            sync: false
        }))
    );

    let mut c = ContentClient::new(ch.clone());
    let dgst = format!("sha256:{}", "0".repeat(64));
    rpc!(
        "Content.Info",
        c.info(ns(content::InfoRequest {
            digest: dgst.clone()
        }))
    );
    rpc!(
        "Content.Update",
        c.update(ns(content::UpdateRequest::default()))
    );
    rpc!(
        "Content.List",
        c.list(ns(content::ListContentRequest::default()))
    );
    rpc!(
        "Content.Delete",
        c.delete(ns(content::DeleteContentRequest {
            digest: dgst.clone()
        }))
    );
    rpc!(
        "Content.Read",
        c.read(ns(content::ReadContentRequest {
            digest: dgst.clone(),
            ..Default::default()
        }))
    );
    rpc!(
        "Content.Status",
        c.status(ns(content::StatusRequest { r#ref: "r".into() }))
    );
    rpc!(
        "Content.ListStatuses",
        c.list_statuses(ns(content::ListStatusesRequest::default()))
    );
    let stat = content::WriteContentRequest {
        r#ref: "every-rpc".into(),
        ..Default::default()
    };
    rpc!("Content.Write", c.write(ns(tokio_stream::iter(vec![stat]))));
    rpc!(
        "Content.Abort",
        c.abort(ns(content::AbortRequest {
            r#ref: "every-rpc-abort".into()
        }))
    );

    let mut c = ImagesClient::new(ch.clone());
    rpc!(
        "Images.Get",
        c.get(ns(images::GetImageRequest {
            name: "nope".into()
        }))
    );
    rpc!(
        "Images.List",
        c.list(ns(images::ListImagesRequest::default()))
    );
    rpc!(
        "Images.Create",
        c.create(ns(images::CreateImageRequest::default()))
    );
    rpc!(
        "Images.Update",
        c.update(ns(images::UpdateImageRequest::default()))
    );
    rpc!(
        "Images.Delete",
        c.delete(ns(images::DeleteImageRequest {
            name: "nope".into(),
            sync: false
        }))
    );

    let mut c = DiffClient::new(ch.clone());
    rpc!("Diff.Apply", c.apply(ns(diff::ApplyRequest::default())));
    rpc!("Diff.Diff", c.diff(ns(diff::DiffRequest::default())));

    let mut c = SnapshotsClient::new(ch.clone());
    let sn = || "overlayfs".to_owned();
    rpc!(
        "Snapshots.Prepare",
        c.prepare(ns(snapshots::PrepareSnapshotRequest {
            snapshotter: sn(),
            key: "k".into(),
            ..Default::default()
        }))
    );
    rpc!(
        "Snapshots.View",
        c.view(ns(snapshots::ViewSnapshotRequest {
            snapshotter: sn(),
            key: "v".into(),
            parent: "nope".into(),
            ..Default::default()
        }))
    );
    rpc!(
        "Snapshots.Mounts",
        c.mounts(ns(snapshots::MountsRequest {
            snapshotter: sn(),
            key: "nope".into()
        }))
    );
    rpc!(
        "Snapshots.Commit",
        c.commit(ns(snapshots::CommitSnapshotRequest {
            snapshotter: sn(),
            name: "n".into(),
            key: "nope".into(),
            ..Default::default()
        }))
    );
    rpc!(
        "Snapshots.Remove",
        c.remove(ns(snapshots::RemoveSnapshotRequest {
            snapshotter: sn(),
            key: "k".into()
        }))
    );
    rpc!(
        "Snapshots.Stat",
        c.stat(ns(snapshots::StatSnapshotRequest {
            snapshotter: sn(),
            key: "nope".into()
        }))
    );
    rpc!(
        "Snapshots.Update",
        c.update(ns(snapshots::UpdateSnapshotRequest {
            snapshotter: sn(),
            ..Default::default()
        }))
    );
    rpc!(
        "Snapshots.List",
        c.list(ns(snapshots::ListSnapshotsRequest {
            snapshotter: sn(),
            ..Default::default()
        }))
    );
    rpc!(
        "Snapshots.Usage",
        c.usage(ns(snapshots::UsageRequest {
            snapshotter: sn(),
            key: "nope".into()
        }))
    );
    rpc!(
        "Snapshots.Cleanup",
        c.cleanup(ns(snapshots::CleanupRequest { snapshotter: sn() }))
    );

    let mut c = ContainersClient::new(ch.clone());
    rpc!(
        "Containers.Get",
        c.get(ns(containers::GetContainerRequest { id: "nope".into() }))
    );
    rpc!(
        "Containers.List",
        c.list(ns(containers::ListContainersRequest::default()))
    );
    rpc!(
        "Containers.ListStream",
        c.list_stream(ns(containers::ListContainersRequest::default()))
    );
    rpc!(
        "Containers.Create",
        c.create(ns(containers::CreateContainerRequest::default()))
    );
    rpc!(
        "Containers.Update",
        c.update(ns(containers::UpdateContainerRequest::default()))
    );
    rpc!(
        "Containers.Delete",
        c.delete(ns(containers::DeleteContainerRequest { id: "nope".into() }))
    );

    let mut c = TasksClient::new(ch.clone());
    let cid = || "no-such-container".to_owned();
    rpc!(
        "Tasks.Create",
        c.create(ns(tasks::CreateTaskRequest {
            container_id: cid(),
            ..Default::default()
        }))
    );
    rpc!(
        "Tasks.Start",
        c.start(ns(tasks::StartRequest {
            container_id: cid(),
            ..Default::default()
        }))
    );
    rpc!(
        "Tasks.Delete",
        c.delete(ns(tasks::DeleteTaskRequest {
            container_id: cid()
        }))
    );
    rpc!(
        "Tasks.DeleteProcess",
        c.delete_process(ns(tasks::DeleteProcessRequest {
            container_id: cid(),
            exec_id: "e".into()
        }))
    );
    rpc!(
        "Tasks.Get",
        c.get(ns(tasks::GetRequest {
            container_id: cid(),
            ..Default::default()
        }))
    );
    rpc!("Tasks.List", c.list(ns(tasks::ListTasksRequest::default())));
    rpc!(
        "Tasks.Kill",
        c.kill(ns(tasks::KillRequest {
            container_id: cid(),
            signal: 15,
            ..Default::default()
        }))
    );
    rpc!(
        "Tasks.Exec",
        c.exec(ns(tasks::ExecProcessRequest {
            container_id: cid(),
            exec_id: "e".into(),
            ..Default::default()
        }))
    );
    rpc!(
        "Tasks.ResizePty",
        c.resize_pty(ns(tasks::ResizePtyRequest {
            container_id: cid(),
            ..Default::default()
        }))
    );
    rpc!(
        "Tasks.CloseIO",
        c.close_io(ns(tasks::CloseIoRequest {
            container_id: cid(),
            ..Default::default()
        }))
    );
    rpc!(
        "Tasks.Pause",
        c.pause(ns(tasks::PauseTaskRequest {
            container_id: cid()
        }))
    );
    rpc!(
        "Tasks.Resume",
        c.resume(ns(tasks::ResumeTaskRequest {
            container_id: cid()
        }))
    );
    rpc!(
        "Tasks.ListPids",
        c.list_pids(ns(tasks::ListPidsRequest {
            container_id: cid()
        }))
    );
    rpc!(
        "Tasks.Checkpoint",
        c.checkpoint(ns(tasks::CheckpointTaskRequest {
            container_id: cid(),
            ..Default::default()
        }))
    );
    rpc!(
        "Tasks.Update",
        c.update(ns(tasks::UpdateTaskRequest {
            container_id: cid(),
            ..Default::default()
        }))
    );
    rpc!(
        "Tasks.Metrics",
        c.metrics(ns(tasks::MetricsRequest {
            filters: vec![format!("id=={}", cid())]
        }))
    );
    rpc!(
        "Tasks.Wait",
        c.wait(ns(tasks::WaitRequest {
            container_id: cid(),
            ..Default::default()
        }))
    );

    let mut c = EventsClient::new(ch.clone());
    let any = || {
        Some(prost_types::Any {
            type_url: "containerd.events.NamespaceCreate".into(),
            value: vec![],
        })
    };
    rpc!(
        "Events.Publish",
        c.publish(ns(events::PublishRequest {
            topic: "/test/every-rpc".into(),
            event: any()
        }))
    );
    let env = events::Envelope {
        namespace: crate::NS.into(),
        topic: "/test/every-rpc".into(),
        event: any(),
        timestamp: None,
    };
    rpc!(
        "Events.Forward",
        c.forward(ns(events::ForwardRequest {
            envelope: Some(env)
        }))
    );
    rpc!(
        "Events.Subscribe",
        c.subscribe(ns(events::SubscribeRequest::default()))
    );

    let mut names: Vec<_> = seen.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        TOTAL_RPCS,
        "every RPC called exactly once: {names:?}"
    );
    let mut bad = Vec::new();
    for (name, r) in &seen {
        match r {
            Ok(()) => eprintln!("{name:<26} OK"),
            Err(s) => {
                eprintln!("{name:<26} {:?}: {}", s.code(), s.message());
                if !ANSWER_CODES.contains(&s.code()) || s.message().is_empty() {
                    bad.push(format!("{name}: {:?} {}", s.code(), s.message()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "RPCs without a proper answer: {bad:#?}");

    // The services built in this crate answer for real, not Unimplemented.
    let built = [
        "Version.",
        "Introspection.",
        "Namespaces.",
        "Leases.",
        "Images.",
        "Containers.",
        "Events.",
    ];
    for (name, r) in &seen {
        if built.iter().any(|p| name.starts_with(p)) {
            assert!(
                !matches!(r, Err(s) if s.code() == Code::Unimplemented),
                "{name} must be built"
            );
        }
    }
    let ok = |n: &str| seen.iter().any(|(name, r)| *name == n && r.is_ok());
    for n in [
        "Version.Version",
        "Introspection.Server",
        "Introspection.Plugins",
        "Namespaces.Create",
        "Namespaces.Get",
        "Namespaces.List",
        "Namespaces.Update",
        "Namespaces.Delete",
        "Leases.Create",
        "Leases.List",
        "Leases.AddResource",
        "Leases.ListResources",
        "Leases.DeleteResource",
        "Leases.Delete",
        "Images.List",
        "Containers.List",
        "Containers.ListStream",
        "Events.Publish",
        "Events.Forward",
        "Events.Subscribe",
    ] {
        assert!(ok(n), "{n} should succeed");
    }
    let code = |n: &str| {
        seen.iter()
            .find(|(name, _)| *name == n)
            .and_then(|(_, r)| r.as_ref().err())
            .map(Status::code)
    };
    assert_eq!(code("Images.Get"), Some(Code::NotFound));
    assert_eq!(code("Images.Delete"), Some(Code::NotFound));
    assert_eq!(code("Images.Create"), Some(Code::InvalidArgument));
    assert_eq!(code("Containers.Get"), Some(Code::NotFound));
    assert_eq!(code("Containers.Create"), Some(Code::InvalidArgument));
    drop(ch);
    d.stop().await.expect("clean stop");
}
