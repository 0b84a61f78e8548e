//! The flags shared by `start`, `serve` and `delete` (the berthd <-> shim
//! contract): `--namespace NS --id ID --bundle BUNDLE --address BERTHD_SOCKET
//! --state STATE_DIR`, each also accepted as `--flag=value`.

use std::ffi::OsString;
use std::path::PathBuf;

/// Why the command line was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag the contract does not define.
    #[error("unknown flag {0:?}")]
    UnknownFlag(String),
    /// A flag without its value.
    #[error("flag {0} needs a value")]
    MissingValue(String),
    /// A required flag was not given.
    #[error("missing required flag --{0}")]
    Missing(&'static str),
    /// A value that is not valid UTF-8 where text is needed.
    #[error("flag {0} is not valid utf-8")]
    NotUtf8(String),
}

/// Who the shim is and where its files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    /// containerd namespace of the task.
    pub namespace: String,
    /// Container (task) id.
    pub id: String,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// berthd's socket (a path or `unix://` URI) for events.
    pub address: String,
    /// berthd's state dir (sockets under `s/`, runtime root under `runtime/`).
    pub state: PathBuf,
}

impl ShimArgs {
    /// Parses the flags after the subcommand.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<ShimArgs, CliError> {
        let mut namespace = None;
        let mut id = None;
        let mut bundle = None;
        let mut address = None;
        let mut state = None;
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let text = arg
                .to_str()
                .ok_or_else(|| CliError::NotUtf8(arg.to_string_lossy().into_owned()))?
                .to_owned();
            let (flag, inline) = match text.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(OsString::from(v))),
                None => (text, None),
            };
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| CliError::MissingValue(flag.clone()))?,
            };
            let utf8 = |v: OsString| v.into_string().map_err(|_| CliError::NotUtf8(flag.clone()));
            match flag.as_str() {
                "--namespace" | "-namespace" => namespace = Some(utf8(value)?),
                "--id" | "-id" => id = Some(utf8(value)?),
                "--bundle" | "-bundle" => bundle = Some(PathBuf::from(value)),
                "--address" | "-address" => address = Some(utf8(value)?),
                "--state" | "-state" => state = Some(PathBuf::from(value)),
                _ => return Err(CliError::UnknownFlag(flag)),
            }
        }
        Ok(ShimArgs {
            namespace: namespace.ok_or(CliError::Missing("namespace"))?,
            id: id.ok_or(CliError::Missing("id"))?,
            bundle: bundle.ok_or(CliError::Missing("bundle"))?,
            address: address.ok_or(CliError::Missing("address"))?,
            state: state.ok_or(CliError::Missing("state"))?,
        })
    }

    /// The flags again, for re-executing the binary.
    pub fn to_args(&self) -> Vec<OsString> {
        vec![
            "--namespace".into(),
            self.namespace.clone().into(),
            "--id".into(),
            self.id.clone().into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--address".into(),
            self.address.clone().into(),
            "--state".into(),
            self.state.clone().into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_both_forms_and_round_trips() {
        let a = ShimArgs::parse(os(&[
            "--namespace",
            "default",
            "--id=c1",
            "--bundle",
            "/b",
            "--address",
            "/run/berth.sock",
            "--state=/var/lib/berth",
        ]))
        .expect("valid flags");
        assert_eq!(a.namespace, "default");
        assert_eq!(a.id, "c1");
        assert_eq!(a.bundle, PathBuf::from("/b"));
        assert_eq!(a.state, PathBuf::from("/var/lib/berth"));
        assert_eq!(ShimArgs::parse(a.to_args()).expect("round trip"), a);
    }

    #[test]
    fn rejects_missing_and_unknown() {
        assert!(matches!(
            ShimArgs::parse(os(&["--id", "x"])),
            Err(CliError::Missing("namespace"))
        ));
        assert!(matches!(
            ShimArgs::parse(os(&["--bogus", "x"])),
            Err(CliError::UnknownFlag(_))
        ));
        assert!(matches!(
            ShimArgs::parse(os(&["--id"])),
            Err(CliError::MissingValue(_))
        ));
    }
}
