//! containerd's client-side names of task statuses (`running`, `stopped`, …): what
//! `ctr tasks ls` prints and what a `status==…` filter matches.

use crate::containerd::v1::types::Status;

impl Status {
    /// The lowercase name, as containerd's Go client spells it.
    pub fn lower_name(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
            Status::Pausing => "pausing",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_names_are_the_proto_names_in_lowercase() {
        for s in [
            Status::Unknown,
            Status::Created,
            Status::Running,
            Status::Stopped,
            Status::Paused,
            Status::Pausing,
        ] {
            assert_eq!(s.lower_name(), s.as_str_name().to_ascii_lowercase());
        }
    }
}
