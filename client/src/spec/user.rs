//! Resolving an image's `User` through its `/etc/passwd` and `/etc/group`,
//! with containerd's rules (`oci.WithUser`, `oci.WithAdditionalGIDs`).

use crate::error::{Error, Result};

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group ID.
    pub gid: u32,
    /// Member login names.
    pub members: Vec<String>,
}

/// The text of an image's `/etc/passwd` and `/etc/group` (either may be
/// missing).
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    /// Parsed `/etc/passwd`.
    pub passwd: Vec<PasswdEntry>,
    /// Parsed `/etc/group`.
    pub group: Vec<GroupEntry>,
}

/// A resolved process user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
    /// Supplementary groups from `/etc/group` memberships.
    pub additional_gids: Vec<u32>,
}

impl UserDb {
    /// Parses the two files' text; malformed lines are skipped, as libc does.
    pub fn parse(passwd: Option<&str>, group: Option<&str>) -> UserDb {
        let passwd = passwd
            .unwrap_or("")
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                if line.starts_with('#') || f.len() < 4 {
                    return None;
                }
                Some(PasswdEntry {
                    name: f[0].to_string(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                })
            })
            .collect();
        let group = group
            .unwrap_or("")
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                if line.starts_with('#') || f.len() < 3 {
                    return None;
                }
                Some(GroupEntry {
                    name: f[0].to_string(),
                    gid: f[2].parse().ok()?,
                    members: f
                        .get(3)
                        .map(|m| {
                            m.split(',')
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect();
        UserDb { passwd, group }
    }

    /// Resolves `spec` (`""`, `uid`, `name`, `uid:gid`, `name:group`, …).
    ///
    /// An empty spec is root. A numeric user unknown to `/etc/passwd` keeps
    /// gid 0 (or the given group); a named user or group that does not exist
    /// is an error. Supplementary groups are the groups listing the user's
    /// name as a member, except its own-named group.
    pub fn resolve(&self, spec: &str) -> Result<ResolvedUser> {
        let (user_part, group_part) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let user_part = if user_part.is_empty() { "0" } else { user_part };
        let (uid, mut gid, name) = match user_part.parse::<u32>() {
            Ok(uid) => match self.passwd.iter().find(|p| p.uid == uid) {
                Some(p) => (uid, p.gid, Some(p.name.clone())),
                None => (uid, 0, None),
            },
            Err(_) => {
                let p = self
                    .passwd
                    .iter()
                    .find(|p| p.name == user_part)
                    .ok_or_else(|| {
                        Error::NotFound(format!("no user {user_part:?} in the image's /etc/passwd"))
                    })?;
                (p.uid, p.gid, Some(p.name.clone()))
            }
        };
        if let Some(group) = group_part.filter(|g| !g.is_empty()) {
            gid = match group.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => {
                    self.group
                        .iter()
                        .find(|g| g.name == group)
                        .ok_or_else(|| {
                            Error::NotFound(format!("no group {group:?} in the image's /etc/group"))
                        })?
                        .gid
                }
            };
        }
        let mut additional_gids = Vec::new();
        if let Some(name) = name {
            for g in &self.group {
                if g.name != name && g.members.contains(&name) && !additional_gids.contains(&g.gid)
                {
                    additional_gids.push(g.gid);
                }
            }
        }
        Ok(ResolvedUser {
            uid,
            gid,
            additional_gids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        # comment\n\
        broken line\n\
        www-data:x:33:33:www-data:/var/www:/bin/false\n\
        app:x:1000:1001::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        wheel:x:10:root\n\
        www-data:x:33:www-data\n\
        staff:x:50:app,www-data\n\
        appgrp:x:1001:\n\
        video:x:44:app\n";

    fn db() -> UserDb {
        UserDb::parse(Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn empty_user_is_root_with_wheel_like_containerd() {
        let u = db().resolve("").expect("root");
        assert_eq!(
            u,
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![10]
            }
        );
    }

    #[test]
    fn names_resolve_uid_gid_and_memberships() {
        let u = db().resolve("app").expect("app");
        assert_eq!((u.uid, u.gid), (1000, 1001));
        assert_eq!(u.additional_gids, vec![50, 44]);
        // Its own-named group is not a supplementary group.
        let w = db().resolve("www-data").expect("www-data");
        assert_eq!((w.uid, w.gid, w.additional_gids), (33, 33, vec![50]));
    }

    #[test]
    fn numeric_forms() {
        assert_eq!(db().resolve("1000").expect("uid").gid, 1001);
        let unknown = db().resolve("4242").expect("unknown uid is allowed");
        assert_eq!((unknown.uid, unknown.gid), (4242, 0));
        assert!(unknown.additional_gids.is_empty());
        let pair = db().resolve("4242:77").expect("uid:gid");
        assert_eq!((pair.uid, pair.gid), (4242, 77));
    }

    #[test]
    fn group_names_and_errors() {
        let u = db().resolve("daemon:staff").expect("name:group");
        assert_eq!((u.uid, u.gid), (1, 50));
        let e = db().resolve("nobody").expect_err("unknown name");
        assert!(e.is_not_found());
        assert!(e.to_string().contains("nobody"), "{e}");
        assert!(
            db().resolve("root:nogroup")
                .expect_err("unknown group")
                .is_not_found()
        );
    }

    #[test]
    fn missing_files_allow_numeric_only() {
        let empty = UserDb::parse(None, None);
        assert_eq!(empty.resolve("").expect("root").uid, 0);
        assert_eq!(empty.resolve("12:34").expect("numeric").gid, 34);
        assert!(empty.resolve("app").is_err());
    }
}
