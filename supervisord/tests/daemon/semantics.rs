//! containerd semantics of the services built in this crate, over the wire.

use berth_api::any::unpack;
use berth_api::containerd::events::{ContainerCreate, NamespaceCreate};
use berth_api::containerd::services::containers::v1::{
    Container, CreateContainerRequest, DeleteContainerRequest, GetContainerRequest,
    ListContainersRequest, UpdateContainerRequest, container::Runtime,
    containers_client::ContainersClient,
};
use berth_api::containerd::services::events::v1::{
    PublishRequest, SubscribeRequest, events_client::EventsClient,
};
use berth_api::containerd::services::images::v1::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ImageCreate, ImageDelete,
    ListImagesRequest, UpdateImageRequest, images_client::ImagesClient,
};
use berth_api::containerd::services::leases::v1::{
    CreateRequest, DeleteRequest, ListRequest, ListResourcesRequest, leases_client::LeasesClient,
};
use berth_api::containerd::services::namespaces::v1::{
    CreateNamespaceRequest, DeleteNamespaceRequest, GetNamespaceRequest, Namespace,
    UpdateNamespaceRequest, namespaces_client::NamespacesClient,
};
use berth_api::containerd::types::Descriptor;
use prost_types::{Any, FieldMask};
use tonic::{Code, Request};

use crate::{NS, TestDaemon, ns, with_ns, within};

fn labels(kv: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    kv.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn image(name: &str) -> Image {
    Image {
        name: name.into(),
        target: Some(Descriptor {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: format!("sha256:{}", "c".repeat(64)),
            size: 321,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn namespaces_follow_containerd() {
    let d = TestDaemon::start().await;
    let ch = d.channel().await;
    let mut n = NamespacesClient::new(ch.clone());
    // Get of an unknown namespace: OK, empty labels.
    let got = within(
        "get",
        n.get(GetNamespaceRequest {
            name: "ghost".into(),
        }),
    )
    .await
    .expect("get unknown")
    .into_inner()
    .namespace
    .expect("namespace");
    assert_eq!((got.name.as_str(), got.labels.len()), ("ghost", 0));

    let team = Namespace {
        name: "team1".into(),
        labels: labels(&[("a", "1")]),
    };
    within(
        "create",
        n.create(CreateNamespaceRequest {
            namespace: Some(team.clone()),
        }),
    )
    .await
    .expect("create");
    let err = within(
        "create",
        n.create(CreateNamespaceRequest {
            namespace: Some(team.clone()),
        }),
    )
    .await
    .expect_err("exists");
    assert_eq!(err.code(), Code::AlreadyExists);
    let bad = Namespace {
        name: "Bad..Name".into(),
        ..Default::default()
    };
    let err = within(
        "create",
        n.create(CreateNamespaceRequest {
            namespace: Some(bad),
        }),
    )
    .await
    .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        r#"identifier "Bad..Name" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"#
    );

    // ctr namespaces label team1 k=v: a per-label mask.
    let upd = UpdateNamespaceRequest {
        namespace: Some(Namespace {
            name: "team1".into(),
            labels: labels(&[("k", "v")]),
        }),
        update_mask: Some(FieldMask {
            paths: vec!["labels.k".into()],
        }),
    };
    let got = within("update", n.update(upd))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(
        got.namespace.expect("ns").labels,
        labels(&[("a", "1"), ("k", "v")])
    );

    // A namespace holding an image cannot be deleted.
    within(
        "image",
        ImagesClient::new(ch.clone()).create(with_ns(
            "team1",
            CreateImageRequest {
                image: Some(image("x")),
            },
        )),
    )
    .await
    .expect("image in team1");
    let err = within(
        "delete",
        n.delete(DeleteNamespaceRequest {
            name: "team1".into(),
        }),
    )
    .await
    .expect_err("not empty");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        r#"namespace "team1" must be empty, but it still has images"#
    );
    within(
        "image rm",
        ImagesClient::new(ch.clone()).delete(with_ns(
            "team1",
            DeleteImageRequest {
                name: "x".into(),
                sync: false,
            },
        )),
    )
    .await
    .expect("image rm");
    within(
        "delete",
        n.delete(DeleteNamespaceRequest {
            name: "team1".into(),
        }),
    )
    .await
    .expect("delete empty");
    let err = within(
        "delete",
        n.delete(DeleteNamespaceRequest {
            name: "team1".into(),
        }),
    )
    .await
    .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn images_crud_events_and_filters() {
    let d = TestDaemon::start().await;
    let ch = d.channel().await;
    let mut events = within(
        "subscribe",
        EventsClient::new(ch.clone()).subscribe(SubscribeRequest {
            filters: vec![r#"topic~="^/images/""#.into()],
        }),
    )
    .await
    .expect("subscribe")
    .into_inner();
    let mut c = ImagesClient::new(ch.clone());
    let created = within(
        "create",
        c.create(ns(CreateImageRequest {
            image: Some(image("docker.io/library/busybox:latest")),
        })),
    )
    .await
    .expect("create")
    .into_inner()
    .image
    .expect("image");
    assert!(created.created_at.is_some() && created.created_at == created.updated_at);
    let err = within(
        "create",
        c.create(ns(CreateImageRequest {
            image: Some(image("docker.io/library/busybox:latest")),
        })),
    )
    .await
    .expect_err("exists");
    assert_eq!(err.code(), Code::AlreadyExists);
    within(
        "create b",
        c.create(ns(CreateImageRequest {
            image: Some(Image {
                labels: labels(&[("tier", "x")]),
                ..image("b")
            }),
        })),
    )
    .await
    .expect("create b");

    let mut upd = image("b");
    upd.labels = labels(&[("new", "1")]);
    let got = within(
        "update",
        c.update(ns(UpdateImageRequest {
            image: Some(upd),
            update_mask: Some(FieldMask {
                paths: vec!["labels.new".into()],
            }),
        })),
    )
    .await
    .expect("update")
    .into_inner()
    .image
    .expect("image");
    assert_eq!(got.labels, labels(&[("new", "1"), ("tier", "x")]));

    let names = |r: Vec<Image>| r.into_iter().map(|i| i.name).collect::<Vec<_>>();
    let all = within("list", c.list(ns(ListImagesRequest::default())))
        .await
        .expect("list");
    assert_eq!(
        names(all.into_inner().images),
        ["b", "docker.io/library/busybox:latest"]
    );
    let f = within(
        "list",
        c.list(ns(ListImagesRequest {
            filters: vec!["labels.tier==x".into()],
        })),
    )
    .await
    .expect("list");
    assert_eq!(names(f.into_inner().images), ["b"]);
    let other = within(
        "list",
        c.list(with_ns("elsewhere", ListImagesRequest::default())),
    )
    .await
    .expect("list");
    assert!(
        other.into_inner().images.is_empty(),
        "namespaces are isolated"
    );

    within(
        "delete",
        c.delete(ns(DeleteImageRequest {
            name: "b".into(),
            sync: false,
        })),
    )
    .await
    .expect("delete");
    let err = within("get", c.get(ns(GetImageRequest { name: "b".into() })))
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);

    let mut topics = Vec::new();
    for _ in 0..4 {
        let env = within("event", events.message())
            .await
            .expect("stream")
            .expect("event");
        assert_eq!(env.namespace, NS);
        topics.push(env.topic.clone());
        let any = env.event.expect("payload");
        match env.topic.as_str() {
            "/images/create" => assert!(unpack::<ImageCreate>(&any).is_ok()),
            "/images/delete" => assert_eq!(unpack::<ImageDelete>(&any).expect("decode").name, "b"),
            _ => {}
        }
    }
    assert_eq!(
        topics,
        [
            "/images/create",
            "/images/create",
            "/images/update",
            "/images/delete"
        ]
    );
}

#[tokio::test]
async fn containers_keep_the_spec_byte_exact() {
    let d = TestDaemon::start().await;
    let ch = d.channel().await;
    let mut events = within(
        "subscribe",
        EventsClient::new(ch.clone()).subscribe(SubscribeRequest {
            filters: vec![format!("namespace=={NS},topic==/containers/create")],
        }),
    )
    .await
    .expect("subscribe")
    .into_inner();
    let mut c = ContainersClient::new(ch.clone());
    // Deliberately odd bytes: the server must not re-encode the JSON.
    let spec = Any {
        type_url: berth_api::any::SPEC_TYPE_URL.into(),
        value: b"{ \"ociVersion\" : \"1.0.2\",\n  \"process\": {\"args\":[\"sh\"]}  }".to_vec(),
    };
    let ctr = Container {
        id: "c1".into(),
        image: "docker.io/library/busybox:latest".into(),
        runtime: Some(Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        }),
        spec: Some(spec.clone()),
        snapshotter: "overlayfs".into(),
        snapshot_key: "c1".into(),
        labels: labels(&[("io.containerd.image.config.stop-signal", "SIGTERM")]),
        ..Default::default()
    };
    within(
        "create",
        c.create(ns(CreateContainerRequest {
            container: Some(ctr.clone()),
        })),
    )
    .await
    .expect("create");
    let got = within("get", c.get(ns(GetContainerRequest { id: "c1".into() })))
        .await
        .expect("get")
        .into_inner()
        .container
        .expect("container");
    assert_eq!(got.spec, Some(spec));
    assert_eq!(got.labels, ctr.labels);
    let mut stream = within(
        "list stream",
        c.list_stream(ns(ListContainersRequest::default())),
    )
    .await
    .expect("list stream")
    .into_inner();
    let first = within("msg", stream.message())
        .await
        .expect("ok")
        .expect("one");
    assert_eq!(first.container.expect("c").id, "c1");
    assert!(within("end", stream.message()).await.expect("ok").is_none());

    let mut bad = ctr.clone();
    bad.id = "c2".into();
    bad.runtime = None;
    let err = within(
        "create",
        c.create(ns(CreateContainerRequest {
            container: Some(bad),
        })),
    )
    .await
    .expect_err("no runtime");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "must specify a runtime name");

    let mut upd = ctr.clone();
    upd.labels = labels(&[("x", "y")]);
    let got = within(
        "update",
        c.update(ns(UpdateContainerRequest {
            container: Some(upd),
            update_mask: Some(FieldMask {
                paths: vec!["labels.x".into()],
            }),
        })),
    )
    .await
    .expect("update")
    .into_inner()
    .container
    .expect("container");
    assert_eq!(got.labels.get("x").map(String::as_str), Some("y"));
    assert_eq!(got.labels.len(), 2);
    let f = within(
        "list",
        c.list(ns(ListContainersRequest {
            filters: vec!["labels.x==y".into()],
        })),
    )
    .await
    .expect("list");
    assert_eq!(f.into_inner().containers.len(), 1);
    within(
        "delete",
        c.delete(ns(DeleteContainerRequest { id: "c1".into() })),
    )
    .await
    .expect("delete");

    let env = within("event", events.message())
        .await
        .expect("stream")
        .expect("event");
    let ev: ContainerCreate = unpack(&env.event.expect("payload")).expect("decode");
    assert_eq!(
        (ev.id.as_str(), ev.runtime.expect("rt").name.as_str()),
        ("c1", "io.containerd.runc.v2")
    );
}

#[tokio::test]
async fn leases_and_the_lease_header() {
    let d = TestDaemon::start().await;
    let ch = d.channel().await;
    let mut l = LeasesClient::new(ch.clone());
    let generated = within(
        "create",
        l.create(ns(CreateRequest {
            id: String::new(),
            labels: labels(&[("containerd.io/gc.expire", "2100-01-01T00:00:00Z")]),
        })),
    )
    .await
    .expect("create")
    .into_inner()
    .lease
    .expect("lease");
    assert!(!generated.id.is_empty() && generated.created_at.is_some());

    // An image created under the lease becomes one of its resources.
    let mut req = ns(CreateImageRequest {
        image: Some(image("leased")),
    });
    req.metadata_mut().insert(
        berth_api::metadata::LEASE_HEADER,
        generated.id.parse().expect("ascii"),
    );
    within("image", ImagesClient::new(ch.clone()).create(req))
        .await
        .expect("image");
    let res = within(
        "resources",
        l.list_resources(ns(ListResourcesRequest {
            id: generated.id.clone(),
        })),
    )
    .await
    .expect("resources")
    .into_inner()
    .resources;
    assert_eq!(res.len(), 1);
    assert_eq!(
        (res[0].r#type.as_str(), res[0].id.as_str()),
        ("images", "leased")
    );

    within(
        "create",
        l.create(ns(CreateRequest {
            id: "mine".into(),
            ..Default::default()
        })),
    )
    .await
    .expect("create with id");
    let f = within(
        "list",
        l.list(ns(ListRequest {
            filters: vec!["id==mine".into()],
        })),
    )
    .await
    .expect("list")
    .into_inner()
    .leases;
    assert_eq!(f.len(), 1);
    within(
        "delete",
        l.delete(ns(DeleteRequest {
            id: "mine".into(),
            sync: true,
        })),
    )
    .await
    .expect("delete");
    let err = within(
        "delete",
        l.delete(ns(DeleteRequest {
            id: "mine".into(),
            sync: false,
        })),
    )
    .await
    .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn events_publish_needs_a_namespace_and_reaches_subscribers() {
    let d = TestDaemon::start().await;
    let ch = d.channel().await;
    let mut e = EventsClient::new(ch.clone());
    let mut sub = within("subscribe", e.subscribe(SubscribeRequest::default()))
        .await
        .expect("subscribe")
        .into_inner();
    let any = Any {
        type_url: "containerd.events.NamespaceCreate".into(),
        value: vec![],
    };
    let err = within(
        "publish",
        e.publish(Request::new(PublishRequest {
            topic: "/x".into(),
            event: Some(any.clone()),
        })),
    )
    .await
    .expect_err("no namespace");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = within(
        "publish",
        e.publish(ns(PublishRequest {
            topic: "bad".into(),
            event: Some(any.clone()),
        })),
    )
    .await
    .expect_err("bad topic");
    assert_eq!(err.code(), Code::InvalidArgument);
    // Namespaces.Create publishes too (all namespaces are delivered).
    within(
        "create",
        NamespacesClient::new(ch.clone()).create(ns(CreateNamespaceRequest {
            namespace: Some(Namespace {
                name: "evns".into(),
                ..Default::default()
            }),
        })),
    )
    .await
    .expect("create");
    within(
        "publish",
        e.publish(with_ns(
            "other",
            PublishRequest {
                topic: "/custom/topic".into(),
                event: Some(any),
            },
        )),
    )
    .await
    .expect("publish");
    let first = within("event", sub.message())
        .await
        .expect("ok")
        .expect("event");
    assert_eq!(first.topic, "/namespaces/create");
    let ev: NamespaceCreate = unpack(&first.event.expect("payload")).expect("decode");
    assert_eq!(ev.name, "evns");
    let second = within("event", sub.message())
        .await
        .expect("ok")
        .expect("event");
    assert_eq!(
        (second.namespace.as_str(), second.topic.as_str()),
        ("other", "/custom/topic")
    );
    assert!(second.timestamp.is_some());
}
