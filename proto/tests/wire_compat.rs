//! Cross-checks berth's containerd protos against the ones containerd 1.6
//! ships in Debian (package `golang-github-containerd-containerd-dev`, which
//! pulls in the cgroups, gogo and googleapis protos it imports).
//!
//! For every message, enum and service in Debian's files: ours must have it
//! under the same full name; every field of theirs must exist in ours with
//! the same number, type, type name, label and oneof membership; every enum
//! value with the same number; every RPC with the same input, output and
//! streaming. Ours may add fields (containerd 1.7 did).
//!
//! Without the Debian package the test is skipped, except under `CI=true`,
//! where it fails.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FileDescriptorSet, ServiceDescriptorProto,
};

const GOCODE: &str = "/usr/share/gocode/src";
const DEBIAN_PACKAGE: &str = "golang-github-containerd-containerd-dev";

/// Debian's proto files we mirror, relative to `GOCODE`.
const THEIR_FILES: &[&str] = &[
    "github.com/containerd/containerd/api/types/descriptor.proto",
    "github.com/containerd/containerd/api/types/metrics.proto",
    "github.com/containerd/containerd/api/types/mount.proto",
    "github.com/containerd/containerd/api/types/platform.proto",
    "github.com/containerd/containerd/api/types/task/task.proto",
    "github.com/containerd/containerd/api/events/container.proto",
    "github.com/containerd/containerd/api/events/content.proto",
    "github.com/containerd/containerd/api/events/image.proto",
    "github.com/containerd/containerd/api/events/namespace.proto",
    "github.com/containerd/containerd/api/events/snapshot.proto",
    "github.com/containerd/containerd/api/events/task.proto",
    "github.com/containerd/containerd/api/services/containers/v1/containers.proto",
    "github.com/containerd/containerd/api/services/content/v1/content.proto",
    "github.com/containerd/containerd/api/services/diff/v1/diff.proto",
    "github.com/containerd/containerd/api/services/events/v1/events.proto",
    "github.com/containerd/containerd/api/services/images/v1/images.proto",
    "github.com/containerd/containerd/api/services/introspection/v1/introspection.proto",
    "github.com/containerd/containerd/api/services/leases/v1/leases.proto",
    "github.com/containerd/containerd/api/services/namespaces/v1/namespace.proto",
    "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.proto",
    "github.com/containerd/containerd/api/services/tasks/v1/tasks.proto",
    "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.proto",
    "github.com/containerd/containerd/api/services/version/v1/version.proto",
    "github.com/containerd/containerd/runtime/v2/runc/options/oci.proto",
    "github.com/containerd/cgroups/stats/v1/metrics.proto",
    "github.com/containerd/cgroups/v2/stats/metrics.proto",
    // From golang-github-gogo-googleapis-dev, resolved via THEIR_INCLUDES.
    "google/rpc/status.proto",
];

/// Include roots for Debian's imports (`gogoproto/...`, `google/rpc/...`).
const THEIR_INCLUDES: &[&str] = &[
    "/usr/share/gocode/src",
    "/usr/share/gocode/src/github.com/gogo/protobuf",
    "/usr/share/gocode/src/github.com/gogo/googleapis",
];

#[derive(Default)]
struct Index {
    messages: BTreeMap<String, DescriptorProto>,
    enums: BTreeMap<String, EnumDescriptorProto>,
    services: BTreeMap<String, ServiceDescriptorProto>,
}

impl Index {
    /// Indexes the files of `set` whose name satisfies `keep`.
    fn new(set: &FileDescriptorSet, keep: impl Fn(&str) -> bool) -> Index {
        let mut index = Index::default();
        for file in set.file.iter().filter(|f| keep(f.name())) {
            let scope = format!(".{}", file.package());
            for msg in &file.message_type {
                index.add_message(&scope, msg);
            }
            for en in &file.enum_type {
                index
                    .enums
                    .insert(format!("{scope}.{}", en.name()), en.clone());
            }
            for svc in &file.service {
                index
                    .services
                    .insert(format!("{scope}.{}", svc.name()), svc.clone());
            }
        }
        index
    }

    fn add_message(&mut self, scope: &str, msg: &DescriptorProto) {
        let name = format!("{scope}.{}", msg.name());
        for nested in &msg.nested_type {
            self.add_message(&name, nested);
        }
        for en in &msg.enum_type {
            self.enums
                .insert(format!("{name}.{}", en.name()), en.clone());
        }
        self.messages.insert(name, msg.clone());
    }
}

fn oneof_name(msg: &DescriptorProto, index: Option<i32>) -> Option<String> {
    let i = usize::try_from(index?).ok()?;
    msg.oneof_decl.get(i).map(|o| o.name().to_string())
}

/// Every way `ours` differs from `theirs` on the wire.
fn differences(theirs: &Index, ours: &Index) -> Vec<String> {
    let mut out = Vec::new();
    for (name, their) in &theirs.messages {
        let Some(our) = ours.messages.get(name) else {
            out.push(format!("message {name} missing"));
            continue;
        };
        let is_map = |m: &DescriptorProto| m.options.as_ref().is_some_and(|o| o.map_entry());
        if is_map(their) != is_map(our) {
            out.push(format!("message {name}: map entry differs"));
        }
        for tf in &their.field {
            let Some(of) = our.field.iter().find(|f| f.name() == tf.name()) else {
                out.push(format!("{name}.{}: field missing", tf.name()));
                continue;
            };
            let t = (tf.number(), tf.r#type(), tf.type_name(), tf.label());
            let o = (of.number(), of.r#type(), of.type_name(), of.label());
            if t != o {
                out.push(format!("{name}.{}: theirs {t:?}, ours {o:?}", tf.name()));
            }
            let (to, oo) = (
                oneof_name(their, tf.oneof_index),
                oneof_name(our, of.oneof_index),
            );
            if to != oo {
                out.push(format!("{name}.{}: oneof {to:?} vs {oo:?}", tf.name()));
            }
        }
    }
    for (name, their) in &theirs.enums {
        let Some(our) = ours.enums.get(name) else {
            out.push(format!("enum {name} missing"));
            continue;
        };
        for tv in &their.value {
            let found = our.value.iter().find(|v| v.name() == tv.name());
            if found.map(|v| v.number()) != Some(tv.number()) {
                out.push(format!(
                    "enum {name}.{}: number differs or missing",
                    tv.name()
                ));
            }
        }
    }
    for (name, their) in &theirs.services {
        let Some(our) = ours.services.get(name) else {
            out.push(format!("service {name} missing"));
            continue;
        };
        for tm in &their.method {
            let Some(om) = our.method.iter().find(|m| m.name() == tm.name()) else {
                out.push(format!("{name}/{}: rpc missing", tm.name()));
                continue;
            };
            let t = (
                tm.input_type(),
                tm.output_type(),
                tm.client_streaming(),
                tm.server_streaming(),
            );
            let o = (
                om.input_type(),
                om.output_type(),
                om.client_streaming(),
                om.server_streaming(),
            );
            if t != o {
                out.push(format!("{name}/{}: theirs {t:?}, ours {o:?}", tm.name()));
            }
        }
    }
    out
}

fn debian_set() -> Option<FileDescriptorSet> {
    if !Path::new(GOCODE).join(THEIR_FILES[0]).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "containerd protos missing under {GOCODE}: CI must `apt-get install -y {DEBIAN_PACKAGE}`"
        );
        eprintln!("skipped: {DEBIAN_PACKAGE} is not installed");
        return None;
    }
    let mut compiler = protox::Compiler::new(THEIR_INCLUDES).expect("include dirs exist");
    for file in THEIR_FILES {
        compiler
            .open_file(file)
            .unwrap_or_else(|e| panic!("cannot compile Debian's {file}: {e}"));
    }
    Some(compiler.file_descriptor_set())
}

#[test]
fn ours_are_wire_compatible_with_debian_containerd() {
    let Some(their_set) = debian_set() else {
        return;
    };
    let theirs = Index::new(&their_set, |_| true);
    // The sample must be real: every service and the big messages.
    assert_eq!(theirs.services.len(), 12, "{:?}", theirs.services.keys());
    assert!(
        theirs
            .messages
            .contains_key(".io.containerd.cgroups.v1.MemoryStat")
    );

    let our_set = FileDescriptorSet::decode(berth_api::FILE_DESCRIPTOR_SET)
        .expect("build.rs wrote a valid descriptor set");
    let ours = Index::new(&our_set, |name| !name.starts_with("google/protobuf/"));
    let diffs = differences(&theirs, &ours);
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn the_comparison_catches_a_renumbered_field() {
    let Some(their_set) = debian_set() else {
        return;
    };
    let theirs = Index::new(&their_set, |_| true);
    let mut ours = Index::new(&their_set, |_| true);
    assert!(differences(&theirs, &ours).is_empty());
    let mount = ours
        .messages
        .get_mut(".containerd.types.Mount")
        .expect("Debian has Mount");
    mount.field[0].number = Some(9);
    let diffs = differences(&theirs, &ours);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(
        diffs[0].starts_with(".containerd.types.Mount.type"),
        "{diffs:?}"
    );
}
