//! API keys: who may call the service, in which workspace, with which role.
//!
//! A key reads `trk_<id>_<secret>`. Only the id and the SHA-256 of the secret are stored, so a
//! copy of the database lets no one in; the id finds the row in one lookup and the digest is
//! compared in constant time. Core owns the types and the [`KeyStore`] trait (kept apart from
//! [`Store`](crate::store::Store) so each storage engine can add it on its own); generating and
//! checking keys is here too because it needs nothing of transport or storage.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{Millis, WorkspaceId};
use crate::error::CoreResult;

/// What a key may do, each role including the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Every Get, List, Score, Suggest, Match, Find, Audit, Recommend, Plan and status call.
    Read,
    /// Read, and ingest, strategies, sources (create, update, check, sync), merges.
    Write,
    /// Write, and deleting sources and forgetting people.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored key: everything but its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub workspace: WorkspaceId,
    pub role: Role,
    /// A label for people ("crm sync", "dashboard").
    pub name: String,
    pub secret_sha256: [u8; 32],
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("workspace", &self.workspace)
            .field("role", &self.role)
            .field("name", &self.name)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

const PREFIX: &str = "trk_";

/// A new key: the row to store, and the full key to show once.
pub fn generate(workspace: WorkspaceId, role: Role, name: &str, now: Millis) -> (ApiKey, String) {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    let mut rng = rand::rng();
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex(&id);
    let secret = hex(&secret);
    let key = ApiKey {
        secret_sha256: digest(&secret),
        id: id.clone(),
        workspace,
        role,
        name: name.to_owned(),
        created_at: now,
        revoked_at: None,
    };
    (key, format!("{PREFIX}{id}_{secret}"))
}

/// Splits a presented key into its id and secret; `None` when it is not shaped like a key.
pub fn split(presented: &str) -> Option<(&str, &str)> {
    let (id, secret) = presented.strip_prefix(PREFIX)?.split_once('_')?;
    let hexadecimal = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_hexdigit());
    (hexadecimal(id) && hexadecimal(secret)).then_some((id, secret))
}

/// Whether `secret` is the one whose digest `key` holds, in time independent of where they differ.
pub fn matches(key: &ApiKey, secret: &str) -> bool {
    bool::from(digest(secret).ct_eq(&key.secret_sha256))
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Where keys live. Implemented by each storage engine; read on every call so that a revoked
/// key is refused at once by every server on the database.
pub trait KeyStore: Send + Sync + 'static {
    /// Stores a new key; fails if its id exists.
    fn put_key(&self, key: &ApiKey) -> CoreResult<()>;
    fn key(&self, id: &str) -> CoreResult<Option<ApiKey>>;
    /// Every key, revoked ones too, oldest first.
    fn keys(&self) -> CoreResult<Vec<ApiKey>>;
    /// Marks a key revoked; `false` when there is no such key or it was revoked already.
    fn revoke_key(&self, id: &str, now: Millis) -> CoreResult<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_matches_only_its_own_secret() {
        let (stored, presented) = generate(WorkspaceId::default_workspace(), Role::Write, "ci", 1);
        let (id, secret) = split(&presented).expect("a generated key splits");
        assert_eq!(id, stored.id);
        assert!(matches(&stored, secret));
        let (other, other_presented) =
            generate(WorkspaceId::default_workspace(), Role::Write, "ci", 1);
        let (_, other_secret) = split(&other_presented).expect("splits");
        assert!(!matches(&stored, other_secret));
        assert!(!matches(&other, secret));
        assert!(!format!("{stored:?}").contains(secret));
    }

    #[test]
    fn malformed_keys_do_not_split() {
        for bad in [
            "",
            "trk_",
            "trk_abc",
            "trk__abc",
            "trk_abc_",
            "key_ab_cd",
            "trk_zz_00",
        ] {
            assert_eq!(split(bad), None, "{bad}");
        }
        assert!(Role::Admin > Role::Write && Role::Write > Role::Read);
    }
}
