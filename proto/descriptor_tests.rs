//! Checks the compiled descriptor set: every RPC of containerd's eleven v1
//! services is present, with containerd's streaming shape.

use std::collections::BTreeSet;

use prost::Message;
use prost_types::FileDescriptorSet;

use crate::FILE_DESCRIPTOR_SET;

/// `/package.Service/Method` plus a streaming marker: `<` client stream,
/// `>` server stream.
fn rpcs_in(set: &FileDescriptorSet, package_prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in &set.file {
        if !file.package().starts_with(package_prefix) {
            continue;
        }
        for service in &file.service {
            for method in &service.method {
                let mut entry = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                if method.client_streaming() {
                    entry.push_str(" <");
                }
                if method.server_streaming() {
                    entry.push_str(" >");
                }
                out.insert(entry);
            }
        }
    }
    out
}

fn decoded() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("build.rs wrote a valid descriptor set")
}

const CONTAINERD_RPCS: &[&str] = &[
    "/containerd.services.containers.v1.Containers/Create",
    "/containerd.services.containers.v1.Containers/Delete",
    "/containerd.services.containers.v1.Containers/Get",
    "/containerd.services.containers.v1.Containers/List",
    "/containerd.services.containers.v1.Containers/ListStream >",
    "/containerd.services.containers.v1.Containers/Update",
    "/containerd.services.content.v1.Content/Abort",
    "/containerd.services.content.v1.Content/Delete",
    "/containerd.services.content.v1.Content/Info",
    "/containerd.services.content.v1.Content/List >",
    "/containerd.services.content.v1.Content/ListStatuses",
    "/containerd.services.content.v1.Content/Read >",
    "/containerd.services.content.v1.Content/Status",
    "/containerd.services.content.v1.Content/Update",
    "/containerd.services.content.v1.Content/Write < >",
    "/containerd.services.diff.v1.Diff/Apply",
    "/containerd.services.diff.v1.Diff/Diff",
    "/containerd.services.events.v1.Events/Forward",
    "/containerd.services.events.v1.Events/Publish",
    "/containerd.services.events.v1.Events/Subscribe >",
    "/containerd.services.images.v1.Images/Create",
    "/containerd.services.images.v1.Images/Delete",
    "/containerd.services.images.v1.Images/Get",
    "/containerd.services.images.v1.Images/List",
    "/containerd.services.images.v1.Images/Update",
    "/containerd.services.introspection.v1.Introspection/Plugins",
    "/containerd.services.introspection.v1.Introspection/Server",
    "/containerd.services.leases.v1.Leases/AddResource",
    "/containerd.services.leases.v1.Leases/Create",
    "/containerd.services.leases.v1.Leases/Delete",
    "/containerd.services.leases.v1.Leases/DeleteResource",
    "/containerd.services.leases.v1.Leases/List",
    "/containerd.services.leases.v1.Leases/ListResources",
    "/containerd.services.namespaces.v1.Namespaces/Create",
    "/containerd.services.namespaces.v1.Namespaces/Delete",
    "/containerd.services.namespaces.v1.Namespaces/Get",
    "/containerd.services.namespaces.v1.Namespaces/List",
    "/containerd.services.namespaces.v1.Namespaces/Update",
    "/containerd.services.snapshots.v1.Snapshots/Cleanup",
    "/containerd.services.snapshots.v1.Snapshots/Commit",
    "/containerd.services.snapshots.v1.Snapshots/List >",
    "/containerd.services.snapshots.v1.Snapshots/Mounts",
    "/containerd.services.snapshots.v1.Snapshots/Prepare",
    "/containerd.services.snapshots.v1.Snapshots/Remove",
    "/containerd.services.snapshots.v1.Snapshots/Stat",
    "/containerd.services.snapshots.v1.Snapshots/Update",
    "/containerd.services.snapshots.v1.Snapshots/Usage",
    "/containerd.services.snapshots.v1.Snapshots/View",
    "/containerd.services.tasks.v1.Tasks/Checkpoint",
    "/containerd.services.tasks.v1.Tasks/CloseIO",
    "/containerd.services.tasks.v1.Tasks/Create",
    "/containerd.services.tasks.v1.Tasks/Delete",
    "/containerd.services.tasks.v1.Tasks/DeleteProcess",
    "/containerd.services.tasks.v1.Tasks/Exec",
    "/containerd.services.tasks.v1.Tasks/Get",
    "/containerd.services.tasks.v1.Tasks/Kill",
    "/containerd.services.tasks.v1.Tasks/List",
    "/containerd.services.tasks.v1.Tasks/ListPids",
    "/containerd.services.tasks.v1.Tasks/Metrics",
    "/containerd.services.tasks.v1.Tasks/Pause",
    "/containerd.services.tasks.v1.Tasks/ResizePty",
    "/containerd.services.tasks.v1.Tasks/Resume",
    "/containerd.services.tasks.v1.Tasks/Start",
    "/containerd.services.tasks.v1.Tasks/Update",
    "/containerd.services.tasks.v1.Tasks/Wait",
    "/containerd.services.version.v1.Version/Version",
];

#[test]
fn containerd_services_have_every_rpc() {
    let set = decoded();
    let mut found = rpcs_in(&set, "containerd.services.");
    // The ttrpc twin is not one of the eleven gRPC services.
    found.retain(|rpc| !rpc.starts_with("/containerd.services.events.ttrpc."));
    let expected: BTreeSet<String> = CONTAINERD_RPCS.iter().map(|s| s.to_string()).collect();
    let missing: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    let services: BTreeSet<&str> = found
        .iter()
        .map(|rpc| rpc.split('/').nth(1).expect("rpc path has a service"))
        .collect();
    assert_eq!(services.len(), 11, "{services:?}");
}

#[test]
fn berth_services_have_their_rpcs() {
    let found = rpcs_in(&decoded(), "berth.");
    let expected: BTreeSet<String> = [
        "/berth.images.v1.Transfer/Export >",
        "/berth.images.v1.Transfer/Import <",
        "/berth.images.v1.Transfer/Pull >",
        "/berth.images.v1.Transfer/Push >",
        "/berth.shim.v1.Shim/Checkpoint",
        "/berth.shim.v1.Shim/CloseIO",
        "/berth.shim.v1.Shim/Connect",
        "/berth.shim.v1.Shim/Create",
        "/berth.shim.v1.Shim/Delete",
        "/berth.shim.v1.Shim/Exec",
        "/berth.shim.v1.Shim/Kill",
        "/berth.shim.v1.Shim/Pause",
        "/berth.shim.v1.Shim/Pids",
        "/berth.shim.v1.Shim/ResizePty",
        "/berth.shim.v1.Shim/Resume",
        "/berth.shim.v1.Shim/Shutdown",
        "/berth.shim.v1.Shim/Start",
        "/berth.shim.v1.Shim/State",
        "/berth.shim.v1.Shim/Stats",
        "/berth.shim.v1.Shim/Update",
        "/berth.shim.v1.Shim/Wait",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn task_types_live_in_containerd_v1_types() {
    let set = decoded();
    let file = set
        .file
        .iter()
        .find(|f| f.name() == "containerd/types/task/task.proto")
        .expect("task.proto compiled");
    assert_eq!(file.package(), "containerd.v1.types");
    let names: BTreeSet<&str> = file.message_type.iter().map(|m| m.name()).collect();
    assert_eq!(names, BTreeSet::from(["Process", "ProcessInfo"]));
    assert_eq!(file.enum_type[0].name(), "Status");
}

#[test]
fn image_events_live_in_the_images_package() {
    use crate::containerd::services::images::v1::ImageCreate;
    use prost::Name;
    assert_eq!(
        ImageCreate::full_name(),
        "containerd.services.images.v1.ImageCreate"
    );
}

#[test]
fn unbuilt_rpcs_answer_unimplemented() {
    use crate::containerd::services::version::v1::version_server::Version;
    use crate::error::{ErrorKind, HasKind};

    struct Bare;
    impl Version for Bare {}

    let reply = futures::executor::block_on(Bare.version(tonic::Request::new(())));
    let status = reply.expect_err("no method body was written");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(status.kind(), ErrorKind::NotImplemented);
}
