//! Registry settings (`[registry]` in berthd's TOML) and credentials: from the request,
//! the config, or a docker `config.json` (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), in that order.
//!
//! ```toml
//! [registry]
//! insecure = ["registry.lan:5000"]        # plain http (loopback registries always are)
//! docker_config = "/root/.docker/config.json"   # optional; default as docker finds it
//! [registry.auths."registry.lan:5000"]
//! username = "me"
//! password = "secret"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use super::error::{Result, TransferError};

/// The `[registry]` section of berthd's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Registries (host:port or host) spoken to over plain http.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Credentials per registry (host:port as in image references).
    #[serde(default)]
    pub auths: BTreeMap<String, Credential>,
    /// A docker `config.json` to read credentials from; default as docker finds it.
    #[serde(default)]
    pub docker_config: Option<PathBuf>,
}

/// A username and password (or identity token as password).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl RegistryConfig {
    /// The credentials for `registry`: the request's, the config's, docker's, or none.
    pub fn auth_for(&self, registry: &str, username: &str, password: &str) -> Result<RegistryAuth> {
        if !username.is_empty() || !password.is_empty() {
            return Ok(RegistryAuth::Basic(username.into(), password.into()));
        }
        if let Some(c) = self.auths.get(registry) {
            return Ok(RegistryAuth::Basic(c.username.clone(), c.password.clone()));
        }
        let path = match &self.docker_config {
            Some(p) => Some(p.clone()),
            None => default_docker_config(),
        };
        match path {
            Some(p) if p.exists() => Ok(docker_auth(&p, registry)?
                .map_or(RegistryAuth::Anonymous, |c| {
                    RegistryAuth::Basic(c.username, c.password)
                })),
            _ => Ok(RegistryAuth::Anonymous),
        }
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The credential docker's `config.json` at `path` holds for `registry`, matching the
/// key as docker does: exact, with a scheme, and `index.docker.io/v1/` for docker.io.
pub fn docker_auth(path: &Path, registry: &str) -> Result<Option<Credential>> {
    let bad = |what: String| TransferError::DockerConfig {
        path: path.display().to_string(),
        what,
    };
    let text = std::fs::read(path).map_err(|e| bad(format!("read: {e}")))?;
    let config: DockerConfig =
        serde_json::from_slice(&text).map_err(|e| bad(format!("parse: {e}")))?;
    let wanted: Vec<String> = if registry == "docker.io" || registry == "index.docker.io" {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ]
    } else {
        vec![registry.into()]
    };
    let found = config.auths.iter().find(|(key, _)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        wanted
            .iter()
            .any(|w| w == *key || w == host || host.split('/').next() == Some(w))
    });
    let Some((_, auth)) = found else {
        return Ok(None);
    };
    if let Some(encoded) = auth.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64_decode(encoded).ok_or_else(|| bad("auth is not base64".into()))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("auth is not utf-8".into()))?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| bad("auth is not user:password".into()))?;
        return Ok(Some(Credential {
            username: user.into(),
            password: pass.into(),
        }));
    }
    match (&auth.username, &auth.password, &auth.identitytoken) {
        (_, _, Some(token)) if !token.is_empty() => Ok(Some(Credential {
            username: "<token>".into(),
            password: token.clone(),
        })),
        (Some(u), Some(p), _) => Ok(Some(Credential {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// Standard base64 (with or without padding); `None` when malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes: Vec<u8> = s.trim().trim_end_matches('=').bytes().collect();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let n = chunk.len() - 1;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").expect("valid"), b"user:pass");
        assert_eq!(base64_decode("YQ==").expect("valid"), b"a");
        assert_eq!(base64_decode("YWI").expect("valid"), b"ab");
        assert!(base64_decode("Y").is_none());
        assert!(base64_decode("a*bc").is_none());
    }

    #[test]
    fn credentials_in_order_request_config_docker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let docker = dir.path().join("config.json");
        std::fs::write(
            &docker,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"},
                "reg.lan:5000":{"username":"d","password":"dp"},
                "tok.lan":{"identitytoken":"T"}}}"#,
        )
        .expect("write");
        let mut cfg = RegistryConfig {
            docker_config: Some(docker),
            ..RegistryConfig::default()
        };
        cfg.auths.insert(
            "cfg.lan".into(),
            Credential {
                username: "c".into(),
                password: "cp".into(),
            },
        );
        let basic = |u: &str, p: &str| RegistryAuth::Basic(u.into(), p.into());
        assert_eq!(
            cfg.auth_for("cfg.lan", "r", "rp").expect("ok"),
            basic("r", "rp")
        );
        assert_eq!(
            cfg.auth_for("cfg.lan", "", "").expect("ok"),
            basic("c", "cp")
        );
        assert_eq!(
            cfg.auth_for("reg.lan:5000", "", "").expect("ok"),
            basic("d", "dp")
        );
        assert_eq!(
            cfg.auth_for("docker.io", "", "").expect("ok"),
            basic("hub", "hubpw")
        );
        assert_eq!(
            cfg.auth_for("tok.lan", "", "").expect("ok"),
            basic("<token>", "T")
        );
        assert_eq!(
            cfg.auth_for("none.lan", "", "").expect("ok"),
            RegistryAuth::Anonymous
        );
    }

    #[test]
    fn config_section_parses() {
        let cfg: RegistryConfig = toml::from_str(
            "insecure = [\"a:1\"]\n[auths.\"a:1\"]\nusername = \"u\"\npassword = \"p\"\n",
        )
        .expect("parses");
        assert_eq!(cfg.insecure, vec!["a:1".to_owned()]);
        assert_eq!(cfg.auths["a:1"].username, "u");
        assert!(toml::from_str::<RegistryConfig>("bogus = 1").is_err());
    }
}
