//! berthd's configuration: command-line flags over an optional TOML file over defaults.
//!
//! The flags are a public interface: `--root`, `--state`, `--address`, `--config`,
//! `--log-level`, `--log-format`. The TOML file takes the same keys (`root`, `state`,
//! `address`, `log_level`, `log_format`); a flag given on the command line wins.
//!
//! ```toml
//! root = "/var/lib/berth"
//! state = "/run/berth"
//! address = "/run/berth/berthd.sock"
//! log_level = "info"
//! log_format = "text"   # or "json"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_STATE: &str = "/run/berth";
pub const DEFAULT_ADDRESS: &str = "/run/berth/berthd.sock";
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The command line of `berthd`.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "berthd",
    version,
    about = "berth's supervisor daemon (containerd v1 API)"
)]
pub struct Args {
    /// Persistent state directory (metadata, content, snapshots) [default: /var/lib/berth]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Volatile state directory (bundles, shim sockets) [default: /run/berth]
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// gRPC unix socket path [default: /run/berth/berthd.sock]
    #[arg(long, value_name = "SOCKET")]
    pub address: Option<PathBuf>,
    /// TOML configuration file with the same keys; flags win
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives [default: info]
    #[arg(long, value_name = "L")]
    pub log_level: Option<String>,
    /// Log line format [default: text]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// The keys of the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub root: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub address: Option<PathBuf>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    /// `[registry]`: plain-http registries and credentials (see `images::auth`).
    #[serde(default)]
    pub registry: crate::images::RegistryConfig,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub root: PathBuf,
    pub state: PathBuf,
    pub address: PathBuf,
    pub log_level: String,
    pub log_format: LogFormat,
    pub registry: crate::images::RegistryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            root: DEFAULT_ROOT.into(),
            state: DEFAULT_STATE.into(),
            address: DEFAULT_ADDRESS.into(),
            log_level: DEFAULT_LOG_LEVEL.into(),
            log_format: LogFormat::Text,
            registry: crate::images::RegistryConfig::default(),
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse config file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

impl Config {
    /// Resolve flags over the file named by `--config` (if any) over defaults.
    pub fn from_args(args: Args) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Ok(Self::merge(args, file))
    }

    /// Flags win over the file, the file over defaults.
    pub fn merge(args: Args, file: FileConfig) -> Self {
        let d = Self::default();
        Self {
            root: args.root.or(file.root).unwrap_or(d.root),
            state: args.state.or(file.state).unwrap_or(d.state),
            address: args.address.or(file.address).unwrap_or(d.address),
            log_level: args.log_level.or(file.log_level).unwrap_or(d.log_level),
            log_format: args.log_format.or(file.log_format).unwrap_or(d.log_format),
            registry: file.registry,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn defaults_without_flags_or_file() {
        let args = Args::try_parse_from(["berthd"]).expect("parses");
        let c = Config::from_args(args).expect("resolves");
        assert_eq!(c, Config::default());
        assert_eq!(c.address, PathBuf::from("/run/berth/berthd.sock"));
        assert_eq!(c.root, PathBuf::from("/var/lib/berth"));
        assert_eq!(c.state, PathBuf::from("/run/berth"));
    }

    #[test]
    fn flags_win_over_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("berthd.toml");
        std::fs::write(
            &file,
            "root = \"/r\"\nstate = \"/s\"\naddress = \"/a.sock\"\nlog_format = \"json\"\n",
        )
        .expect("write config");
        let args = Args::try_parse_from([
            "berthd",
            "--config",
            file.to_str().expect("utf8"),
            "--root",
            "/flag-root",
            "--log-level",
            "debug",
        ])
        .expect("parses");
        let c = Config::from_args(args).expect("resolves");
        assert_eq!(c.root, PathBuf::from("/flag-root"));
        assert_eq!(c.state, PathBuf::from("/s"));
        assert_eq!(c.address, PathBuf::from("/a.sock"));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(FileConfig::parse("rooot = \"/x\"").is_err(), "unknown key");
        assert!(FileConfig::parse("log_format = \"xml\"").is_err());
        let missing = Args {
            config: Some("/nonexistent/berthd.toml".into()),
            ..Args::default()
        };
        assert!(matches!(
            Config::from_args(missing),
            Err(ConfigError::Read { .. })
        ));
        assert!(Args::try_parse_from(["berthd", "--log-format", "xml"]).is_err());
    }
}
