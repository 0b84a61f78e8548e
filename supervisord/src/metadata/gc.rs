//! The GC-roots view: what garbage collection must keep, read in one transaction.
//!
//! Roots, per namespace: every image's target digest; every container's snapshot
//! (snapshotter, key); every content record or snapshot labelled `containerd.io/gc.root`
//! (left to their owners' views); and every resource of a lease that has not expired
//! (`containerd.io/gc.expire`, RFC 3339). The collector itself (walking `gc.ref.*` labels
//! from these roots) lives with the content and snapshot code.

use std::time::{Duration, SystemTime};

use redb::ReadableTable;

use super::containers::Container;
use super::images::Image;
use super::leases::{EXPIRE_LABEL, Lease, resources_of};
use super::{Db, Error, codec::decode, schema, store};

/// One object GC must keep.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Root {
    Content {
        ns: String,
        digest: String,
    },
    Snapshot {
        ns: String,
        snapshotter: String,
        key: String,
    },
    /// A lease resource of another type (`ingests`, `images`, `containers`).
    Other {
        ns: String,
        kind: String,
        id: String,
    },
}

impl Db {
    /// Every GC root at time `now`, sorted.
    pub fn gc_roots(&self, now: SystemTime) -> Result<Vec<Root>, Error> {
        self.read(|txn| {
            let mut out = Vec::new();
            let images = txn.open_table(schema::IMAGES).map_err(store)?;
            for entry in images.iter().map_err(store)? {
                let (k, v) = entry.map_err(store)?;
                let (ns, name) = k.value();
                let img: Image = decode(name, v.value())?;
                out.push(Root::Content {
                    ns: ns.to_owned(),
                    digest: img.target.digest,
                });
            }
            let containers = txn.open_table(schema::CONTAINERS).map_err(store)?;
            for entry in containers.iter().map_err(store)? {
                let (k, v) = entry.map_err(store)?;
                let (ns, id) = k.value();
                let c: Container = decode(id, v.value())?;
                if !c.snapshot_key.is_empty() {
                    out.push(Root::Snapshot {
                        ns: ns.to_owned(),
                        snapshotter: c.snapshotter,
                        key: c.snapshot_key,
                    });
                }
            }
            let leases = txn.open_table(schema::LEASES).map_err(store)?;
            let resources = txn.open_table(schema::LEASE_RESOURCES).map_err(store)?;
            for entry in leases.iter().map_err(store)? {
                let (k, v) = entry.map_err(store)?;
                let (ns, id) = k.value();
                let lease: Lease = decode(id, v.value())?;
                if is_expired(&lease, now) {
                    continue;
                }
                for r in resources_of(&resources, ns, id)? {
                    let ns = ns.to_owned();
                    out.push(match (r.kind.as_str(), r.kind.strip_prefix("snapshots/")) {
                        ("content", _) => Root::Content { ns, digest: r.id },
                        (_, Some(sn)) => Root::Snapshot {
                            ns,
                            snapshotter: sn.to_owned(),
                            key: r.id,
                        },
                        _ => Root::Other {
                            ns,
                            kind: r.kind,
                            id: r.id,
                        },
                    });
                }
            }
            out.sort();
            out.dedup();
            Ok(out)
        })
    }
}

/// Has `lease` passed its `containerd.io/gc.expire` time? A lease without a (parseable)
/// expiry never expires.
pub fn is_expired(lease: &Lease, now: SystemTime) -> bool {
    lease
        .labels
        .get(EXPIRE_LABEL)
        .and_then(|v| parse_rfc3339(v))
        .is_some_and(|t| t <= now)
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, as Go's `time.RFC3339` writes it.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i)?;
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::super::containers::Container;
    use super::super::images::{Descriptor, Image};
    use super::super::{Labels, LeaseResource, codec::AnyValue, testutil};
    use super::*;

    #[test]
    fn rfc3339() {
        let at = |s| parse_rfc3339(s).map(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok());
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(Some(Duration::ZERO)));
        assert_eq!(
            at("2026-11-30T03:00:00.5+01:00"),
            Some(Some(Duration::new(1_796_004_000, 500_000_000)))
        );
        assert_eq!(
            at("2026-11-30T03:00:00Z"),
            Some(Some(Duration::from_secs(1_796_007_600)))
        );
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(parse_rfc3339("2026-13-30T03:00:00Z").is_none());
    }

    #[test]
    fn roots_cover_images_containers_and_live_leases() {
        let (_d, db) = testutil::db();
        let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let target = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: digest('a'),
            size: 1,
            annotations: Labels::new(),
        };
        db.images("ns")
            .create(&Image::new("img", target, Labels::new()), None)
            .expect("image");
        let mut c = Container::new("c1");
        c.runtime.name = "rt".into();
        c.spec = Some(AnyValue::default());
        c.snapshotter = "overlayfs".into();
        c.snapshot_key = "c1".into();
        db.containers("ns").create(&c, None).expect("container");
        let live: Labels = [(EXPIRE_LABEL.into(), "2100-01-01T00:00:00Z".into())].into();
        let dead: Labels = [(EXPIRE_LABEL.into(), "2000-01-01T00:00:00Z".into())].into();
        let leases = db.leases("ns");
        leases.create("live", &live).expect("lease");
        leases.create("dead", &dead).expect("lease");
        let res = |d: String| LeaseResource {
            id: d,
            kind: "content".into(),
        };
        leases.add_resource("live", &res(digest('b'))).expect("add");
        leases.add_resource("dead", &res(digest('c'))).expect("add");

        let roots = db.gc_roots(SystemTime::now()).expect("roots");
        let ns = || "ns".to_owned();
        assert_eq!(
            roots,
            [
                Root::Content {
                    ns: ns(),
                    digest: digest('a')
                },
                Root::Content {
                    ns: ns(),
                    digest: digest('b')
                },
                Root::Snapshot {
                    ns: ns(),
                    snapshotter: "overlayfs".into(),
                    key: "c1".into()
                },
            ]
        );
    }
}
