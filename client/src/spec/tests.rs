use super::*;

fn image(config: Value) -> ImageConfiguration {
    serde_json::from_value(json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:aaaa"]},
        "config": config
    }))
    .expect("image config")
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nweb:x:100:101::/srv:/bin/sh\n";
const GROUP: &str = "root:x:0:\nwheel:x:10:root\nwebgrp:x:101:\nlog:x:4:web\n";

fn users() -> UserDb {
    UserDb::parse(Some(PASSWD), Some(GROUP))
}

#[test]
fn image_config_becomes_process() {
    let img = image(json!({
        "Entrypoint": ["/bin/server"],
        "Cmd": ["--port", "80"],
        "Env": ["PATH=/opt/bin:/bin", "MODE=prod"],
        "WorkingDir": "/srv",
        "User": "web",
        "Labels": {"org.example": "yes"},
        "StopSignal": "SIGQUIT"
    }));
    let g = generate("ns1", "c1", &img, &users(), &SpecOptions::default()).expect("spec");
    let p = &g.spec["process"];
    assert_eq!(p["args"], json!(["/bin/server", "--port", "80"]));
    assert_eq!(p["env"], json!(["PATH=/opt/bin:/bin", "MODE=prod"]));
    assert_eq!(p["cwd"], "/srv");
    assert_eq!(
        p["user"],
        json!({"uid": 100, "gid": 101, "additionalGids": [4]})
    );
    assert_eq!(g.spec["linux"]["cgroupsPath"], "/ns1/c1");
    assert_eq!(g.labels["org.example"], "yes");
    assert_eq!(g.labels[crate::image::STOP_SIGNAL_LABEL], "SIGQUIT");
    // The result is a valid OCI spec.
    let parsed: oci_spec::runtime::Spec =
        serde_json::from_value(g.spec.clone()).expect("valid OCI spec");
    assert_eq!(
        parsed.root().as_ref().expect("root").path().to_str(),
        Some("rootfs")
    );
}

#[test]
fn defaults_match_containerd() {
    let img = image(json!({"Cmd": ["sh"]}));
    let g = generate("default", "x", &img, &users(), &SpecOptions::default()).expect("spec");
    let s = &g.spec;
    assert_eq!(s["process"]["env"], json!([defaults::DEFAULT_PATH]));
    assert_eq!(s["process"]["cwd"], "/");
    assert_eq!(
        s["process"]["user"],
        json!({"uid": 0, "gid": 0, "additionalGids": [10]})
    );
    assert_eq!(
        s["process"]["capabilities"]["bounding"]
            .as_array()
            .map(Vec::len),
        Some(14)
    );
    let dests: Vec<&str> = s["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/run"
        ]
    );
    let ns: Vec<&str> = s["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
    assert_eq!(s["linux"]["maskedPaths"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        s["linux"]["resources"]["devices"][0],
        json!({"allow": false, "access": "rwm"})
    );
    assert_eq!(g.labels[crate::image::STOP_SIGNAL_LABEL], "SIGTERM");
    assert_eq!(s["process"]["terminal"], false);
}

#[test]
fn flags_override_the_image() {
    let img = image(json!({
        "Entrypoint": ["/entry"], "Cmd": ["default"], "Env": ["A=1", "B=2"], "User": "web"
    }));
    let opts = SpecOptions {
        args: vec!["echo".into(), "hi".into()],
        entrypoint: Some(vec![]),
        env: vec!["B=3".into(), "C=4".into()],
        cwd: Some("/tmp".into()),
        user: Some("0:4".into()),
        tty: true,
        hostname: Some("box".into()),
        read_only: true,
        ..SpecOptions::default()
    };
    let g = generate("default", "c", &img, &users(), &opts).expect("spec");
    let p = &g.spec["process"];
    assert_eq!(p["args"], json!(["echo", "hi"]));
    assert_eq!(
        p["env"],
        json!([defaults::DEFAULT_PATH, "A=1", "B=3", "TERM=xterm", "C=4"])
    );
    assert_eq!(p["cwd"], "/tmp");
    assert_eq!(p["user"]["uid"], 0);
    assert_eq!(p["user"]["gid"], 4);
    assert_eq!(p["terminal"], true);
    assert_eq!(g.spec["hostname"], "box");
    assert_eq!(g.spec["root"]["readonly"], true);
}

#[test]
fn cli_args_keep_the_image_entrypoint() {
    let img = image(json!({"Entrypoint": ["/entry"], "Cmd": ["x"]}));
    let opts = SpecOptions {
        args: vec!["y".into()],
        ..SpecOptions::default()
    };
    assert_eq!(process_args(&img, &opts).expect("args"), ["/entry", "y"]);
    let empty = image(json!({}));
    let err = process_args(&empty, &SpecOptions::default()).expect_err("no command");
    assert_eq!(err.kind(), berth_api::ErrorKind::InvalidArgument);
}

#[test]
fn unknown_user_is_an_error() {
    let img = image(json!({"Cmd": ["sh"], "User": "ghost"}));
    let err = generate("d", "c", &img, &users(), &SpecOptions::default()).expect_err("ghost");
    assert!(err.to_string().contains("ghost"), "{err}");
}

#[test]
fn env_merging() {
    let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
    assert_eq!(
        merge_env(&base, &["A=2".into(), "B=3".into()]),
        ["PATH=/bin", "A=2", "B=3"]
    );
    assert_eq!(merge_env(&base, &["A".into()]), ["PATH=/bin"]);
    assert_eq!(merge_env(&base, &["A=".into()]), ["PATH=/bin", "A="]);
}

#[test]
fn capability_edits() {
    let all: Vec<String> = ALL_CAPS.iter().map(|c| c.to_string()).collect();
    let caps = capabilities(
        false,
        &all,
        &["net_admin".into()],
        &["CAP_KILL".into(), "mknod".into()],
    )
    .expect("caps");
    assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
    assert!(!caps.contains(&"CAP_KILL".to_string()));
    assert!(!caps.contains(&"CAP_MKNOD".to_string()));
    assert_eq!(
        capabilities(true, &all, &[], &[]).expect("all").len(),
        ALL_CAPS.len()
    );
    assert_eq!(
        capabilities(false, &all, &["CAP_SYS_ADMIN".into()], &["ALL".into()]).expect("only"),
        ["CAP_SYS_ADMIN"]
    );
    assert!(capabilities(false, &all, &["bogus".into()], &[]).is_err());
}

#[test]
fn privileged_means_the_capabilities_the_host_allows() {
    // Bit n is ALL_CAPS[n]: CAP_CHOWN (0), CAP_KILL (5), CAP_SYS_ADMIN (21);
    // CAP_SYS_RESOURCE (24) is missing, as in a restricted bounding set.
    let bits = 1 | 1 << 5 | 1 << 21 | 1 << 63;
    let mine = caps_from_bitmap(bits);
    assert_eq!(mine, ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"]);
    assert_eq!(
        capabilities(true, &mine, &[], &[]).expect("privileged"),
        mine
    );
    let all_added = capabilities(false, &mine, &["ALL".into()], &[]).expect("add ALL");
    assert_eq!(all_added, mine);
    struct Caps(u64);
    impl host::Host for Caps {
        fn read_dir(&self, _: &std::path::Path) -> std::io::Result<Vec<host::DevEntry>> {
            Ok(Vec::new())
        }
        fn bounding_caps(&self) -> std::io::Result<u64> {
            Ok(self.0)
        }
    }
    let img = image(json!({"Cmd": ["sh"]}));
    let opts = SpecOptions {
        privileged: true,
        ..SpecOptions::default()
    };
    let g = generate_with("d", "c", &img, &users(), &opts, &Caps(bits)).expect("spec");
    assert_eq!(
        g.spec["process"]["capabilities"]["bounding"],
        json!(["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"])
    );
}

#[test]
fn mounts_network_and_resources() {
    let img = image(json!({"Cmd": ["sh"]}));
    let opts = SpecOptions {
        mounts: vec![
            ExtraMount::Bind {
                source: "/data".into(),
                destination: "/data".into(),
                readonly: true,
            },
            ExtraMount::Tmpfs {
                destination: "/run".into(),
                options: vec!["size=1m".into()],
            },
        ],
        network: Network::Host,
        memory: Some(64 << 20),
        cpus: Some(1.5),
        pids_limit: Some(100),
        privileged: true,
        ..SpecOptions::default()
    };
    let g = generate_with("d", "c", &img, &users(), &opts, &OneLoop).expect("spec");
    let mounts = g.spec["mounts"].as_array().expect("mounts");
    let run: Vec<&Value> = mounts
        .iter()
        .filter(|m| m["destination"] == "/run")
        .collect();
    assert_eq!(run.len(), 1, "caller's /run replaces the default");
    assert_eq!(run[0]["options"], json!(["nosuid", "nodev", "size=1m"]));
    assert!(
        mounts
            .iter()
            .any(|m| m["destination"] == "/data" && m["options"] == json!(["rbind", "ro"]))
    );
    assert!(
        mounts
            .iter()
            .any(|m| m["destination"] == "/etc/resolv.conf")
    );
    let ns = g.spec["linux"]["namespaces"].as_array().expect("ns");
    assert!(ns.iter().all(|n| n["type"] != "network"));
    let res = &g.spec["linux"]["resources"];
    assert_eq!(res["memory"]["limit"], 64 << 20);
    assert_eq!(res["cpu"], json!({"quota": 150000, "period": 100000}));
    assert_eq!(res["pids"]["limit"], 100);
    assert_eq!(g.spec["linux"]["maskedPaths"], json!([]));
    // Privileged: the host's nodes are added, every device is allowed.
    let devs = g.spec["linux"]["devices"].as_array().expect("devices");
    assert!(
        devs.iter()
            .any(|d| d["path"] == "/dev/loop0" && d["type"] == "b" && d["major"] == 7),
        "{devs:?}"
    );
    assert_eq!(res["devices"], json!([{"allow": true, "access": "rwm"}]));
    let parsed: std::result::Result<oci_spec::runtime::Spec, _> =
        serde_json::from_value(g.spec.clone());
    assert!(parsed.is_ok(), "{parsed:?}");
}

/// A /dev holding one block device.
struct OneLoop;

impl host::Host for OneLoop {
    fn bounding_caps(&self) -> std::io::Result<u64> {
        Ok((1 << ALL_CAPS.len()) - 1)
    }

    fn read_dir(&self, dir: &std::path::Path) -> std::io::Result<Vec<host::DevEntry>> {
        assert_eq!(dir, std::path::Path::new("/dev"));
        Ok(vec![host::DevEntry {
            name: "loop0".into(),
            kind: host::EntryKind::Block,
            major: 7,
            minor: 0,
            mode: 0o660,
            uid: 0,
            gid: 6,
        }])
    }
}

#[test]
fn unprivileged_containers_get_only_the_default_devices() {
    let img = image(json!({"Cmd": ["sh"]}));
    let g =
        generate_with("d", "c", &img, &users(), &SpecOptions::default(), &OneLoop).expect("spec");
    let devs = g.spec["linux"]["devices"].as_array().expect("devices");
    assert_eq!(devs.len(), 6);
    assert!(devs.iter().all(|d| d["path"] != "/dev/loop0"));
    assert_eq!(
        g.spec["linux"]["resources"]["devices"][0],
        json!({"allow": false, "access": "rwm"})
    );
}
