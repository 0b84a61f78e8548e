//! What containerd's filter grammar (`crate::filters`) sees of tasks and processes.
//!
//! * [`TaskFields`] (Tasks.Metrics): `id`, `namespace`.
//! * [`ProcessFields`] (Tasks.List): `id`, `container_id`, `namespace`, `pid`, `status`
//!   (lower case, as containerd's client names them: `created`, `running`, `stopped`,
//!   `paused`, `pausing`, `unknown`), `exit_status`, `terminal` (`true`/`false`),
//!   `stdin`, `stdout`, `stderr`. An empty stdio path reads as absent.
//!
//! containerd 1.6 ignores Tasks.List's `filter`; berth applies it, e.g.
//! `status==running`, `id~=^web-`, `status!=stopped,exit_status==0`.

use std::borrow::Cow;

use super::manager::{ProcessState, Task};
use crate::filters::Adaptor;

/// A task as Metrics filters see it.
pub(super) struct TaskFields<'a>(pub(super) &'a Task);

impl Adaptor for TaskFields<'_> {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        match path {
            [f] if f == "id" => Some(Cow::Borrowed(&self.0.id)),
            [f] if f == "namespace" => Some(Cow::Borrowed(&self.0.namespace)),
            _ => None,
        }
    }
}

/// A listed process as Tasks.List filters see it.
pub(super) struct ProcessFields<'a> {
    pub(super) namespace: &'a str,
    pub(super) process: &'a ProcessState,
}

fn non_empty(s: &str) -> Option<Cow<'_, str>> {
    (!s.is_empty()).then_some(Cow::Borrowed(s))
}

impl Adaptor for ProcessFields<'_> {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        let p = self.process;
        let [f] = path else { return None };
        match f.as_str() {
            "id" => Some(Cow::Borrowed(&p.id)),
            "container_id" => Some(Cow::Borrowed(&p.container_id)),
            "namespace" => Some(Cow::Borrowed(self.namespace)),
            "pid" => Some(Cow::Owned(p.pid.to_string())),
            "status" => Some(Cow::Borrowed(p.status.lower_name())),
            "exit_status" => Some(Cow::Owned(p.exit_status.to_string())),
            "terminal" => Some(Cow::Borrowed(if p.stdio.terminal {
                "true"
            } else {
                "false"
            })),
            "stdin" => non_empty(&p.stdio.stdin),
            "stdout" => non_empty(&p.stdio.stdout),
            "stderr" => non_empty(&p.stdio.stderr),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::Filter;
    use crate::tasks::manager::Stdio;
    use berth_api::containerd::v1::types::Status;

    fn process(id: &str, status: Status, exit_status: u32) -> ProcessState {
        ProcessState {
            container_id: id.into(),
            id: id.into(),
            pid: 40 + exit_status,
            status,
            stdio: Stdio {
                stdout: format!("/fifo/{id}-out"),
                ..Stdio::default()
            },
            exit_status,
            exited_at: None,
        }
    }

    fn ids(filter: &str, all: &[ProcessState]) -> Vec<String> {
        let f = Filter::parse(filter).expect("filter parses");
        all.iter()
            .filter(|p| {
                f.matches(&ProcessFields {
                    namespace: "ns1",
                    process: p,
                })
            })
            .map(|p| p.id.clone())
            .collect()
    }

    #[test]
    fn process_filters_follow_containerd_grammar() {
        let all = [
            process("web-1", Status::Running, 0),
            process("web-2", Status::Stopped, 3),
            process("db", Status::Paused, 0),
        ];
        assert_eq!(ids("", &all), ["web-1", "web-2", "db"]);
        assert_eq!(ids("status==running", &all), ["web-1"]);
        assert_eq!(ids("status!=running", &all), ["web-2", "db"]);
        assert_eq!(ids("id~=^web-", &all), ["web-1", "web-2"]);
        assert_eq!(ids("id~=^web-,exit_status==3", &all), ["web-2"]);
        assert_eq!(ids("container_id==db", &all), ["db"]);
        assert_eq!(ids("pid==43", &all), ["web-2"]);
        assert_eq!(ids("namespace==ns1,terminal==false", &all).len(), 3);
        assert!(ids("namespace==other", &all).is_empty());
        // Presence: stdout is set, stdin is empty (absent); unknown fields are absent.
        assert_eq!(ids("stdout", &all).len(), 3);
        assert!(ids("stdin", &all).is_empty());
        assert!(ids("labels.x==y", &all).is_empty());
    }
}
