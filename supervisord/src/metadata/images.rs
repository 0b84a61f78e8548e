//! Images: `images: (ns, name) -> Image`, with containerd's validation and update rules.

use std::borrow::Cow;
use std::time::SystemTime;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{decode, encode, time_ns};
use super::{Db, Error, Labels, leases, namespaces, schema, store};
use crate::filters::{self, Adaptor, Filter};
use crate::identifiers;

/// An OCI content descriptor (no protobuf types here).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub annotations: Labels,
}

/// An image record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    pub labels: Labels,
    pub target: Descriptor,
    #[serde(with = "time_ns")]
    pub created_at: SystemTime,
    #[serde(with = "time_ns")]
    pub updated_at: SystemTime,
}

impl Image {
    /// A new record; timestamps are set by the store.
    pub fn new(name: impl Into<String>, target: Descriptor, labels: Labels) -> Self {
        Self {
            name: name.into(),
            labels,
            target,
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
        }
    }
}

impl Adaptor for Image {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        let (first, rest) = path.split_first()?;
        match (first.as_str(), rest) {
            ("name", []) => Some(Cow::Borrowed(&self.name)),
            ("target", [f]) if f == "digest" => Some(Cow::Borrowed(&self.target.digest)),
            ("target", [f]) if f == "mediatype" => Some(Cow::Borrowed(&self.target.media_type)),
            ("labels", rest) => filters::label(&self.labels, rest),
            ("annotations", rest) => filters::label(&self.target.annotations, rest),
            _ => None,
        }
    }
}

/// Is `d` a well-formed `algorithm:hex` digest (sha256/sha384/sha512)?
pub fn validate_digest(d: &str) -> Result<(), String> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or_else(|| format!("invalid checksum digest format {d:?}"))?;
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {alg:?}")),
    };
    if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("invalid checksum digest {d:?}"));
    }
    Ok(())
}

fn validate(img: &Image) -> Result<(), Error> {
    if img.name.is_empty() {
        return Err(Error::invalid("image name must not be empty"));
    }
    identifiers::validate_labels(&img.labels)
        .map_err(|e| Error::invalid(format_args!("image.Labels: {e}")))?;
    validate_digest(&img.target.digest).map_err(|e| {
        Error::invalid(format_args!(
            "Target.Digest {:?} invalid: {e}",
            img.target.digest
        ))
    })?;
    if img.target.size <= 0 {
        return Err(Error::invalid("Target.Size must be greater than zero"));
    }
    if img.target.media_type.is_empty() {
        return Err(Error::invalid("Target.MediaType must be set"));
    }
    Ok(())
}

fn not_found(name: &str) -> Error {
    Error::NotFound {
        kind: "image",
        id: name.to_owned(),
    }
}

/// The images of one namespace.
#[derive(Debug, Clone)]
pub struct Images {
    db: Db,
    ns: String,
}

impl Images {
    pub(super) fn new(db: Db, ns: &str) -> Self {
        Self { db, ns: ns.into() }
    }

    pub fn get(&self, name: &str) -> Result<Image, Error> {
        schema::get2(&self.db, schema::IMAGES, &self.ns, name)?.ok_or_else(|| not_found(name))
    }

    /// Images matching `filter`, by name.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Image>, Error> {
        schema::list2(&self.db, schema::IMAGES, &self.ns, |img: &Image| {
            filter.matches(img)
        })
    }

    /// Create an image (`AlreadyExists` if the name is taken); with `lease`, the image
    /// becomes a resource of that lease (which must exist).
    pub fn create(&self, img: &Image, lease: Option<&str>) -> Result<Image, Error> {
        validate(img)?;
        self.db.write(|txn| {
            namespaces::ensure(txn, &self.ns)?;
            let mut t = txn.open_table(schema::IMAGES).map_err(store)?;
            let key = (self.ns.as_str(), img.name.as_str());
            if t.get(key).map_err(store)?.is_some() {
                return Err(Error::AlreadyExists {
                    kind: "image",
                    id: img.name.clone(),
                });
            }
            let now = SystemTime::now();
            let rec = Image {
                created_at: now,
                updated_at: now,
                ..img.clone()
            };
            t.insert(key, encode(&img.name, &rec)?.as_slice())
                .map_err(store)?;
            if let Some(lease) = lease {
                leases::add_resource_in(txn, &self.ns, lease, "images", &img.name)?;
            }
            Ok(rec)
        })
    }

    /// Update an image. No paths: replace (keeping `created_at`); otherwise each of
    /// `labels`, `labels.<k>`, `target`, `annotations`, `annotations.<k>` is taken from `img`.
    pub fn update(&self, img: &Image, paths: &[String]) -> Result<Image, Error> {
        if img.name.is_empty() {
            return Err(Error::invalid("image name is required for update"));
        }
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::IMAGES).map_err(store)?;
            let key = (self.ns.as_str(), img.name.as_str());
            let old: Image = match t.get(key).map_err(store)? {
                Some(v) => decode(&img.name, v.value())?,
                None => return Err(not_found(&img.name)),
            };
            let mut new = if paths.is_empty() {
                img.clone()
            } else {
                old.clone()
            };
            for path in paths {
                if let Some(k) = path.strip_prefix("labels.") {
                    set_or_remove(&mut new.labels, &img.labels, k);
                } else if let Some(k) = path.strip_prefix("annotations.") {
                    set_or_remove(&mut new.target.annotations, &img.target.annotations, k);
                } else {
                    match path.as_str() {
                        "labels" => new.labels = img.labels.clone(),
                        "target" => new.target = img.target.clone(),
                        "annotations" => new.target.annotations = img.target.annotations.clone(),
                        _ => {
                            return Err(Error::invalid(format_args!(
                                "cannot update {path:?} field on image {:?}",
                                img.name
                            )));
                        }
                    }
                }
            }
            validate(&new)?;
            new.created_at = old.created_at;
            new.updated_at = SystemTime::now();
            t.insert(key, encode(&img.name, &new)?.as_slice())
                .map_err(store)?;
            Ok(new)
        })
    }

    /// Delete an image; `NotFound` if missing.
    pub fn delete(&self, name: &str) -> Result<(), Error> {
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::IMAGES).map_err(store)?;
            if t.remove((self.ns.as_str(), name)).map_err(store)?.is_none() {
                return Err(not_found(name));
            }
            Ok(())
        })
    }
}

/// Apply one `<map>.<key>` mask path: take the value from `from`, or remove the key.
pub(crate) fn set_or_remove(to: &mut Labels, from: &Labels, key: &str) {
    match from.get(key) {
        Some(v) => {
            to.insert(key.to_owned(), v.clone());
        }
        None => {
            to.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    pub(crate) fn target() -> Descriptor {
        Descriptor {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 100,
            annotations: Labels::new(),
        }
    }

    #[test]
    fn crud_and_namespace_isolation() {
        let (_d, db) = testutil::db();
        let imgs = db.images("ns1");
        let img = Image::new("docker.io/library/busybox:latest", target(), Labels::new());
        let created = imgs.create(&img, None).expect("create");
        assert!(created.created_at > SystemTime::UNIX_EPOCH);
        assert_eq!(created.created_at, created.updated_at);
        assert!(matches!(
            imgs.create(&img, None),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(imgs.get(&img.name).expect("get"), created);
        assert!(matches!(
            db.images("ns2").get(&img.name),
            Err(Error::NotFound { .. })
        ));
        assert!(
            db.namespaces().get("ns1").expect("get").is_some(),
            "implicit namespace"
        );
        assert!(matches!(
            db.namespaces().delete("ns1"),
            Err(Error::FailedPrecondition(m)) if m == "namespace \"ns1\" must be empty, but it still has images"
        ));
        imgs.delete(&img.name).expect("delete");
        assert!(matches!(
            imgs.delete(&img.name),
            Err(Error::NotFound { .. })
        ));
        db.namespaces().delete("ns1").expect("now empty");
    }

    #[test]
    fn validation() {
        let (_d, db) = testutil::db();
        let imgs = db.images("ns");
        let mut bad = Image::new("", target(), Labels::new());
        assert!(matches!(
            imgs.create(&bad, None),
            Err(Error::InvalidArgument(_))
        ));
        bad.name = "x".into();
        bad.target.digest = "sha256:zz".into();
        assert!(matches!(
            imgs.create(&bad, None),
            Err(Error::InvalidArgument(_))
        ));
        bad.target = target();
        bad.target.size = 0;
        assert!(matches!(
            imgs.create(&bad, None),
            Err(Error::InvalidArgument(_))
        ));
        bad.target = target();
        bad.target.media_type.clear();
        assert!(matches!(
            imgs.create(&bad, None),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn update_masks_and_filters() {
        let (_d, db) = testutil::db();
        let imgs = db.images("ns");
        let mut img = Image::new("a", target(), [("k".into(), "v".into())].into());
        let created = imgs.create(&img, None).expect("create");
        imgs.create(&Image::new("b", target(), Labels::new()), None)
            .expect("create b");

        img.labels = [("n".into(), "1".into())].into();
        img.target.size = 999;
        let up = imgs.update(&img, &["labels.n".into()]).expect("update");
        assert_eq!(up.labels.get("n").map(String::as_str), Some("1"));
        assert_eq!(up.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(up.target.size, 100, "target not in mask");
        assert_eq!(up.created_at, created.created_at);
        assert!(up.updated_at >= created.updated_at);

        let up = imgs.update(&img, &[]).expect("replace");
        assert_eq!(up.target.size, 999);
        assert_eq!(up.labels, img.labels);
        assert!(matches!(
            imgs.update(&img, &["name".into()]),
            Err(Error::InvalidArgument(_))
        ));
        let missing = Image::new("zzz", target(), Labels::new());
        assert!(matches!(
            imgs.update(&missing, &[]),
            Err(Error::NotFound { .. })
        ));

        let names = |f: &[&str]| -> Vec<String> {
            imgs.list(&Filter::parse_all(f).expect("filter"))
                .expect("list")
                .into_iter()
                .map(|i| i.name)
                .collect()
        };
        assert_eq!(names(&[]), ["a", "b"]);
        assert_eq!(names(&["name==b"]), ["b"]);
        assert_eq!(names(&["labels.n==1"]), ["a"]);
        assert_eq!(names(&["labels.n==1", "name==b"]), ["a", "b"]);
    }
}
