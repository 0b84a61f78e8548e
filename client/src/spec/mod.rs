//! OCI runtime specs for containers made from images.
//!
//! [`generate`] starts from containerd's default spec ([`defaults`]) and
//! applies the image config (entrypoint, cmd, env, working dir, user) and
//! then the caller's [`SpecOptions`], in that order, so a flag always wins
//! over the image.

pub mod defaults;
pub mod devices;
pub mod host;
pub mod user;

use std::collections::BTreeMap;

use oci_spec::image::ImageConfiguration;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use defaults::{ALL_CAPS, DEFAULT_CAPS};
pub use user::{ResolvedUser, UserDb};

/// A mount the caller adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraMount {
    /// `-v SRC:DST[:ro]`: a recursive bind of a host path.
    Bind {
        /// Host path.
        source: String,
        /// Path in the container.
        destination: String,
        /// Mounted read-only.
        readonly: bool,
    },
    /// `--tmpfs DST[:OPTS]`.
    Tmpfs {
        /// Path in the container.
        destination: String,
        /// Mount options (e.g. `size=64m`).
        options: Vec<String>,
    },
}

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// A new network namespace with only loopback (containerd without CNI).
    #[default]
    None,
    /// The host's network namespace, with its /etc/hosts and /etc/resolv.conf.
    Host,
}

/// What the caller sets on top of the image config.
#[derive(Debug, Clone, Default)]
pub struct SpecOptions {
    /// Replaces the image's Cmd when not empty.
    pub args: Vec<String>,
    /// Replaces the image's Entrypoint (and drops its Cmd) when set.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries, replacing same-named image entries.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// `user[:group]`, names or numbers.
    pub user: Option<String>,
    /// Hostname (default: none set).
    pub hostname: Option<String>,
    /// Allocate a terminal (adds `TERM=xterm`).
    pub tty: bool,
    /// Extra mounts, after the default ones.
    pub mounts: Vec<ExtraMount>,
    /// Mount the rootfs read-only.
    pub read_only: bool,
    /// Capabilities to add (`NET_ADMIN`, `CAP_NET_ADMIN` or `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    pub cap_drop: Vec<String>,
    /// All capabilities, no masked paths, all devices, writable /sys.
    pub privileged: bool,
    /// Network mode.
    pub network: Network,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// CPU limit in CPUs (quota over a 100 ms period).
    pub cpus: Option<f64>,
    /// Limit on the number of tasks.
    pub pids_limit: Option<i64>,
}

/// A spec and the labels a container created from it carries.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The OCI runtime spec as JSON.
    pub spec: Value,
    /// Image config labels plus the stop-signal label.
    pub labels: BTreeMap<String, String>,
}

/// Replaces or appends `KEY=VALUE` entries of `base` with `overrides`, as
/// containerd's `replaceOrAppendEnvValues` (an entry without `=` removes
/// the variable).
pub fn merge_env(base: &[String], overrides: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for entry in overrides {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        let pos = out
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
        match (pos, entry.contains('=')) {
            (Some(i), true) => out[i] = entry.clone(),
            (Some(i), false) => {
                out.remove(i);
            }
            (None, true) => out.push(entry.clone()),
            (None, false) => {}
        }
    }
    out
}

/// `CAP_X` for `x`, `X` or `CAP_X`.
pub fn cap_name(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The names of the known capabilities set in `bits` (bit `n` is
/// `ALL_CAPS[n]`); unknown bits are ignored.
pub fn caps_from_bitmap(bits: u64) -> Vec<String> {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(n, _)| bits >> n & 1 == 1)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn wants_all(add: &[String]) -> bool {
    add.iter().any(|a| cap_name(a) == "CAP_ALL")
}

/// The default set (or `all` when privileged) with `add` added and `drop`
/// removed; `ALL` works on both and means `all`: the capabilities the host
/// allows (see [`host::Host::bounding_caps`]; a runtime cannot grant more,
/// as containerd's `WithAllCurrentCapabilities`). Unknown names are
/// refused.
pub fn capabilities(
    privileged: bool,
    all: &[String],
    add: &[String],
    drop: &[String],
) -> Result<Vec<String>> {
    let known = |c: &str| ALL_CAPS.contains(&c);
    let mut caps: Vec<String> = if privileged {
        all.to_vec()
    } else {
        DEFAULT_CAPS.iter().map(|c| c.to_string()).collect()
    };
    for d in drop {
        let c = cap_name(d);
        if c == "CAP_ALL" {
            caps.clear();
        } else if !known(&c) {
            return Err(Error::InvalidArgument(format!("unknown capability {d:?}")));
        } else {
            caps.retain(|x| *x != c);
        }
    }
    for a in add {
        let c = cap_name(a);
        if c == "CAP_ALL" {
            caps = all.to_vec();
        } else if !known(&c) {
            return Err(Error::InvalidArgument(format!("unknown capability {a:?}")));
        } else if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

/// The process args: entrypoint + cmd, with the caller's overrides.
pub fn process_args(image: &ImageConfiguration, opts: &SpecOptions) -> Result<Vec<String>> {
    let cfg = image.config().as_ref();
    let (entrypoint, image_cmd) = match &opts.entrypoint {
        Some(ep) => (ep.clone(), Vec::new()),
        None => (
            cfg.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
            cfg.and_then(|c| c.cmd().clone()).unwrap_or_default(),
        ),
    };
    let cmd = if opts.args.is_empty() {
        image_cmd
    } else {
        opts.args.clone()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::InvalidArgument(
            "no command specified: the image has no entrypoint or cmd".to_string(),
        ));
    }
    Ok(args)
}

/// Builds the spec of container `id` in `namespace` from an image config,
/// its user database and the caller's options; a privileged container gets
/// the host's device nodes under `/dev`.
pub fn generate(
    namespace: &str,
    id: &str,
    image: &ImageConfiguration,
    users: &UserDb,
    opts: &SpecOptions,
) -> Result<Generated> {
    generate_with(namespace, id, image, users, opts, &host::RealHost)
}

/// [`generate`], reading what a privileged container inherits (device
/// nodes, the capabilities the host allows) through `host`.
pub fn generate_with(
    namespace: &str,
    id: &str,
    image: &ImageConfiguration,
    users: &UserDb,
    opts: &SpecOptions,
    host: &dyn host::Host,
) -> Result<Generated> {
    let cfg = image.config().as_ref();
    let mut spec = defaults::default_spec(namespace, id);

    let image_env = cfg.and_then(|c| c.env().clone()).unwrap_or_default();
    let mut env = merge_env(&[defaults::DEFAULT_PATH.to_string()], &image_env);
    if opts.tty {
        env = merge_env(&env, &["TERM=xterm".to_string()]);
    }
    env = merge_env(&env, &opts.env);

    let cwd = opts
        .cwd
        .clone()
        .or_else(|| cfg.and_then(|c| c.working_dir().clone()))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "/".to_string());
    let user_spec = opts
        .user
        .clone()
        .or_else(|| cfg.and_then(|c| c.user().clone()))
        .unwrap_or_default();
    let user = users.resolve(&user_spec)?;
    let all = if opts.privileged || wants_all(&opts.cap_add) {
        let bits = host.bounding_caps().map_err(|e| {
            Error::io(
                "cannot read the capability bounding set",
                "/proc/self/status",
                e,
            )
        })?;
        caps_from_bitmap(bits)
    } else {
        Vec::new()
    };
    let caps = capabilities(opts.privileged, &all, &opts.cap_add, &opts.cap_drop)?;

    let process = &mut spec["process"];
    process["args"] = json!(process_args(image, opts)?);
    process["env"] = json!(env);
    process["cwd"] = json!(cwd);
    process["terminal"] = json!(opts.tty);
    process["user"] = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(user.additional_gids);
    }
    process["capabilities"] = json!({"bounding": caps, "permitted": caps, "effective": caps});

    if let Some(hostname) = &opts.hostname {
        spec["hostname"] = json!(hostname);
    }
    if opts.read_only {
        spec["root"]["readonly"] = json!(true);
    }
    apply_mounts(&mut spec, opts);
    apply_resources(&mut spec, opts);
    if opts.privileged {
        let root = std::path::Path::new("/dev");
        let nodes = devices::host_devices(host, root)
            .map_err(|e| Error::io("cannot list host devices", root, e))?;
        devices::grant_all(&mut spec, &nodes);
    }

    let mut labels: BTreeMap<String, String> = cfg
        .and_then(|c| c.labels().clone())
        .map(|l| l.into_iter().collect())
        .unwrap_or_default();
    let stop = cfg
        .and_then(|c| c.stop_signal().clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "SIGTERM".to_string());
    labels.insert(crate::image::STOP_SIGNAL_LABEL.to_string(), stop);
    Ok(Generated { spec, labels })
}

fn apply_mounts(spec: &mut Value, opts: &SpecOptions) {
    let mut mounts = spec["mounts"].as_array().cloned().unwrap_or_default();
    if opts.privileged {
        for m in &mut mounts {
            if m["destination"] == "/sys" {
                m["options"] = json!(["nosuid", "noexec", "nodev"]);
            }
        }
        spec["linux"]["maskedPaths"] = json!([]);
        spec["linux"]["readonlyPaths"] = json!([]);
    }
    if opts.network == Network::Host {
        if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
        for file in ["/etc/hosts", "/etc/resolv.conf"] {
            mounts.push(json!({"destination": file, "type": "bind", "source": file,
                               "options": ["rbind", "ro"]}));
        }
    }
    for extra in &opts.mounts {
        let m = match extra {
            ExtraMount::Bind {
                source,
                destination,
                readonly,
            } => json!({"destination": destination, "type": "bind", "source": source,
                        "options": ["rbind", if *readonly { "ro" } else { "rw" }]}),
            ExtraMount::Tmpfs {
                destination,
                options,
            } => {
                let mut o = vec!["nosuid".to_string(), "nodev".to_string()];
                o.extend(options.iter().cloned());
                json!({"destination": destination, "type": "tmpfs", "source": "tmpfs",
                       "options": o})
            }
        };
        // A caller's mount replaces a default one at the same place.
        mounts.retain(|d| d["destination"] != m["destination"]);
        mounts.push(m);
    }
    spec["mounts"] = Value::Array(mounts);
}

fn apply_resources(spec: &mut Value, opts: &SpecOptions) {
    let res = &mut spec["linux"]["resources"];
    if let Some(limit) = opts.memory {
        res["memory"] = json!({"limit": limit});
    }
    if let Some(cpus) = opts.cpus {
        let period: u64 = 100_000;
        res["cpu"] = json!({"quota": (cpus * period as f64).round() as i64, "period": period});
    }
    if let Some(pids) = opts.pids_limit {
        res["pids"] = json!({"limit": pids});
    }
}

#[cfg(test)]
mod tests;
