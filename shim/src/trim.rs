//! Giving back what one-time start-up work left mapped in the serving shim.
//!
//! The shim's code and read-only data are clean file pages shared through the
//! page cache by every shim; the kernel maps them in 64 KiB fault-around
//! chunks, so the one-time work of a shim's life (argument parsing, runtime
//! and server construction, then the container's Create and Start) leaves
//! most of the binary in each shim's page tables. [`clean_file_pages`]
//! drops those entries again (`MADV_DONTNEED` on private, read-only file
//! mappings without a single written page): nothing is lost, a page used
//! later is mapped again from the page cache on its next access. Memory
//! the allocator holds but does not use goes back with `malloc_trim`.
//!
//! It runs when the server is ready, once the init's Start has been answered
//! and its event delivered (see [`after_start`]), and after every later
//! burst of RPCs once the shim has been quiet for [`QUIET`] (see
//! [`Activity`]): an idle shim keeps mapped only what idling touches. Never
//! on a timer while nothing happens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::events::Publisher;

/// How long the shim must go without an RPC before a burst's pages are
/// dropped.
pub const QUIET: Duration = Duration::from_secs(1);

/// How long [`after_start`] waits for the Start event to reach berthd.
const EVENT_WAIT: Duration = Duration::from_secs(2);

/// One mapping of `/proc/self/smaps` that may be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// The mappings of `smaps` text that are private, read-only (`r--p` or
/// `r-xp`) views of a file and hold no anonymous (written) page: only those
/// can be dropped without losing data. A relocated read-only section
/// (RELRO) holds written pages and is kept.
pub fn droppable(smaps: &str) -> Vec<Range> {
    let mut out = Vec::new();
    let mut cur: Option<Range> = None;
    for line in smaps.lines() {
        if let Some(r) = header(line) {
            cur = r;
            continue;
        }
        let Some(range) = cur else { continue };
        if let Some(kb) = line.strip_prefix("Anonymous:") {
            if kb.trim().trim_end_matches("kB").trim() == "0" {
                out.push(range);
            }
            cur = None;
        }
    }
    out
}

/// `Some(None)` for a mapping header that is not a candidate, `Some(Some)`
/// for a candidate, `None` for any other line.
fn header(line: &str) -> Option<Option<Range>> {
    let mut f = line.split_whitespace();
    let range = f.next()?;
    let (start, end) = range.split_once('-')?;
    let (Ok(start), Ok(end)) = (
        usize::from_str_radix(start, 16),
        usize::from_str_radix(end, 16),
    ) else {
        return None;
    };
    let perms = f.next()?;
    let path = f.nth(3).unwrap_or("");
    let candidate = matches!(perms, "r--p" | "r-xp") && path.starts_with('/');
    Some(candidate.then_some(Range { start, end }))
}

/// Drops the page-table entries of the clean file pages and returns free
/// heap memory to the kernel. Returns the bytes of mappings advised.
pub fn clean_file_pages() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut advised = 0;
    for r in droppable(&smaps) {
        // SAFETY: `r` is a whole private, read-only file mapping of this
        // process in which no page was ever written (Anonymous: 0), so
        // MADV_DONTNEED only discards page-table entries of clean page-cache
        // pages, which the next access maps again with the same contents.
        let rc = unsafe {
            libc::madvise(
                r.start as *mut libc::c_void,
                r.end - r.start,
                libc::MADV_DONTNEED,
            )
        };
        if rc == 0 {
            advised += r.end - r.start;
        }
    }
    trim_heap();
    advised
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim only returns free allocator memory to the kernel;
    // it takes the allocator's own locks.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

/// After the init's Start: once its event reached berthd (the last step of
/// the start path, bounded by 2 s), trims.
pub fn after_start(events: Publisher) {
    tokio::spawn(async move {
        events.flush(EVENT_WAIT).await;
        let advised = clean_file_pages();
        tracing::debug!(advised, "start-up pages trimmed");
    });
}

/// Counts RPCs, so that [`Activity::trim_when_quiet`] trims after a burst.
#[derive(Clone, Default)]
pub struct Activity(Arc<ActivityInner>);

#[derive(Default)]
struct ActivityInner {
    calls: AtomicU64,
    began: Notify,
}

impl Activity {
    /// Records one RPC.
    pub fn touch(&self) {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        self.0.began.notify_one();
    }

    /// RPCs recorded so far.
    pub fn calls(&self) -> u64 {
        self.0.calls.load(Ordering::Relaxed)
    }

    /// Waits for a burst of calls to begin and to end (`quiet` without a
    /// call), returns, and so on: sleeps only while calls come in.
    pub async fn burst_ended(&self, quiet: Duration) {
        self.0.began.notified().await;
        loop {
            let seen = self.calls();
            tokio::time::sleep(quiet).await;
            if self.calls() == seen {
                return;
            }
        }
    }

    /// Trims after every burst, until the process exits.
    pub async fn trim_when_quiet(self, quiet: Duration) {
        loop {
            self.burst_ended(quiet).await;
            let advised = clean_file_pages();
            tracing::debug!(
                advised,
                calls = self.calls(),
                "pages trimmed after a burst of calls"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
00400000-00550000 r--p 00000000 fd:00 123 /usr/bin/berth-shim
Rss:                 512 kB
Anonymous:             0 kB
00551000-00b24000 r-xp 00150000 fd:00 123 /usr/bin/berth-shim
Rss:                2612 kB
Anonymous:             0 kB
00b24000-00b8b000 r--p 00722000 fd:00 123 /usr/bin/berth-shim
Rss:                 300 kB
Anonymous:            12 kB
00b8b000-00b91000 rw-p 00788000 fd:00 123 /usr/bin/berth-shim
Rss:                  24 kB
Anonymous:            24 kB
01000000-01040000 rw-p 00000000 00:00 0 [heap]
Rss:                 256 kB
Anonymous:           256 kB
7f0000000000-7f0000001000 r--p 00000000 00:00 0
Rss:                   4 kB
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Rss:                   4 kB
Anonymous:             0 kB
";

    #[test]
    fn only_clean_private_read_only_file_mappings_are_dropped() {
        assert_eq!(
            droppable(SMAPS),
            vec![
                Range {
                    start: 0x400000,
                    end: 0x550000
                },
                Range {
                    start: 0x551000,
                    end: 0xb24000
                },
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_ends_only_after_a_quiet_interval() {
        let a = Activity::default();
        let waiter = tokio::spawn({
            let a = a.clone();
            async move {
                a.burst_ended(Duration::from_secs(1)).await;
                tokio::time::Instant::now()
            }
        });
        let t0 = tokio::time::Instant::now();
        for _ in 0..3 {
            a.touch();
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        let ended = waiter.await.expect("waiter");
        // The last call came at 1.2 s; quiet from then on for a full second.
        assert!(
            ended - t0 >= Duration::from_millis(2200),
            "{:?}",
            ended - t0
        );
        assert_eq!(a.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn no_burst_no_wakeup() {
        let a = Activity::default();
        let r = tokio::time::timeout(
            Duration::from_secs(3600),
            a.burst_ended(Duration::from_secs(1)),
        )
        .await;
        assert!(r.is_err(), "nothing happened, so no burst can end");
    }

    #[test]
    fn trimming_this_process_keeps_its_code_working() {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let ranges = droppable(&smaps);
        assert!(!ranges.is_empty(), "a test binary has file-backed code");
        assert!(clean_file_pages() > 0);
        // Code and constants come back on use.
        let v: Vec<String> = (0..3).map(|i| format!("{i:03}")).collect();
        assert_eq!(v.join(","), "000,001,002");
    }
}
