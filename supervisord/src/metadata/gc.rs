//! The collector's view of the store: every record garbage collection reads, and the
//! deletes of its sweep. Both run inside the one write transaction the collector holds
//! (`gc::records`), so no RPC can add a reference between the mark and the sweep. The
//! graph built from these records, and its roots, belong to `gc/`.
//!
//! Also the lease expiry rule (`containerd.io/gc.expire`, RFC 3339).

use std::time::{Duration, SystemTime};

use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use super::containers::Container;
use super::content::BlobRecord;
use super::images::Image;
use super::leases::{EXPIRE_LABEL, Lease, LeaseResource};
use super::snapshots::SnapshotRecord;
use super::{Error, WriteTxn, codec::decode, schema, store};

/// Every record the collector reads, in key order; ids are the tables' keys.
#[derive(Debug, Default)]
pub struct AllRecords {
    /// `(ns, name, image)`.
    pub images: Vec<(String, String, Image)>,
    /// `(ns, id, container)`.
    pub containers: Vec<(String, String, Container)>,
    /// `(ns, id, lease)`, expired or not.
    pub leases: Vec<(String, String, Lease)>,
    /// `(ns, lease id, resource)`.
    pub lease_resources: Vec<(String, String, LeaseResource)>,
    /// `(ns, digest, record)`.
    pub content: Vec<(String, String, BlobRecord)>,
    /// `(ns, ref)` of every ingest.
    pub ingests: Vec<(String, String)>,
    /// `(ns, snapshotter, key, record)`.
    pub snapshots: Vec<(String, String, String, SnapshotRecord)>,
}

type Table2 = TableDefinition<'static, (&'static str, &'static str), &'static [u8]>;

/// `(ns, id, record)` of every row of a `(ns, id)` table.
fn all2<T: DeserializeOwned>(
    txn: &WriteTxn,
    def: Table2,
) -> Result<Vec<(String, String, T)>, Error> {
    let t = txn.open_table(def).map_err(store)?;
    let mut out = Vec::new();
    for entry in t.iter().map_err(store)? {
        let (k, v) = entry.map_err(store)?;
        let (ns, id) = k.value();
        out.push((ns.to_owned(), id.to_owned(), decode(id, v.value())?));
    }
    Ok(out)
}

/// Reads every record garbage collection needs inside `txn` (the collector's write
/// transaction, which it goes on to sweep in with [`delete_in`]).
pub fn read_all(txn: &WriteTxn) -> Result<AllRecords, Error> {
    let mut all = AllRecords {
        images: all2(txn, schema::IMAGES)?,
        containers: all2(txn, schema::CONTAINERS)?,
        leases: all2(txn, schema::LEASES)?,
        ..AllRecords::default()
    };
    let t = txn.open_table(schema::LEASE_RESOURCES).map_err(store)?;
    for entry in t.iter().map_err(store)? {
        let (k, _) = entry.map_err(store)?;
        let (ns, lease, kind, id) = k.value();
        let resource = LeaseResource {
            id: id.to_owned(),
            kind: kind.to_owned(),
        };
        all.lease_resources
            .push((ns.to_owned(), lease.to_owned(), resource));
    }
    drop(t);
    all.content = all2(txn, schema::CONTENT)?;
    let t = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
    for entry in t.iter().map_err(store)? {
        let (k, _) = entry.map_err(store)?;
        let (ns, reference) = k.value();
        all.ingests.push((ns.to_owned(), reference.to_owned()));
    }
    drop(t);
    let t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
    for entry in t.iter().map_err(store)? {
        let (k, v) = entry.map_err(store)?;
        let (ns, sn, key) = k.value();
        let rec: SnapshotRecord = decode(key, v.value())?;
        all.snapshots
            .push((ns.to_owned(), sn.to_owned(), key.to_owned(), rec));
    }
    Ok(all)
}

/// Deletes the content records `(ns, digest)` and snapshot records `(ns, snapshotter,
/// key)` inside `txn`; rows already gone are no error.
pub fn delete_in(
    txn: &WriteTxn,
    content: &[(String, String)],
    snapshots: &[(String, String, String)],
) -> Result<(), Error> {
    let mut t = txn.open_table(schema::CONTENT).map_err(store)?;
    for (ns, digest) in content {
        t.remove((ns.as_str(), digest.as_str())).map_err(store)?;
    }
    drop(t);
    let mut t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
    for (ns, sn, key) in snapshots {
        t.remove((ns.as_str(), sn.as_str(), key.as_str()))
            .map_err(store)?;
    }
    Ok(())
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
    use super::super::images::Descriptor;
    use super::super::{Labels, codec::AnyValue, testutil};
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
    fn read_all_sees_every_table_and_delete_in_removes_rows() {
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
        db.containers("ns2").create(&c, None).expect("container");
        let leases = db.leases("ns");
        leases.create("l1", &Labels::new()).expect("lease");
        let res = LeaseResource {
            id: digest('b'),
            kind: "content".into(),
        };
        leases.add_resource("l1", &res).expect("add");
        let snap = SnapshotRecord {
            key: "k1".into(),
            backend_key: "ns/1-0/k1".into(),
            parent: String::new(),
            labels: Labels::new(),
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
        };
        db.snapshots("ns", "native")
            .insert(&snap)
            .expect("snapshot");

        let all = db.write(read_all).expect("read all");
        let images: Vec<(&str, &str)> = all
            .images
            .iter()
            .map(|(ns, name, _)| (ns.as_str(), name.as_str()))
            .collect();
        assert_eq!(images, [("ns", "img")]);
        assert_eq!(all.images[0].2.target.digest, digest('a'));
        assert_eq!(all.containers.len(), 1);
        assert_eq!(all.containers[0].0, "ns2");
        assert_eq!(all.containers[0].2.snapshot_key, "c1");
        assert_eq!(all.leases.len(), 1);
        assert_eq!(
            all.lease_resources,
            [("ns".to_owned(), "l1".to_owned(), res)]
        );
        assert_eq!(
            all.snapshots,
            [("ns".to_owned(), "native".to_owned(), "k1".to_owned(), snap)]
        );

        let gone = [("ns".to_owned(), "native".to_owned(), "k1".to_owned())];
        db.write(|txn| delete_in(txn, &[], &gone)).expect("delete");
        assert!(matches!(
            db.snapshots("ns", "native").get("k1"),
            Err(Error::NotFound { .. })
        ));
        let all = db.write(read_all).expect("read all");
        assert!(all.snapshots.is_empty());
        assert_eq!(all.images.len(), 1, "other tables untouched");
    }
}
