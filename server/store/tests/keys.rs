//! The SQLite [`KeyStore`]: keys round-trip without their secret, revocation is seen at once by
//! another connection to the same file (as a running server sees `trellis keys revoke`).

use trellis_core::domain::WorkspaceId;
use trellis_core::keys::{self, KeyStore, Role};
use trellis_store::SqliteStore;

fn workspace(name: &str) -> WorkspaceId {
    WorkspaceId::parse(name).expect("valid workspace")
}

#[test]
fn keys_round_trip_and_revocation_is_seen_by_another_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("trellis.db");
    let cli = SqliteStore::open(&path).expect("open");
    let server = SqliteStore::open(&path).expect("open a second time");

    let (reader, reader_secret) = keys::generate(workspace("acme"), Role::Read, "dashboard", 10);
    let (admin, _) = keys::generate(workspace("globex"), Role::Admin, "", 20);
    cli.put_key(&reader).expect("put");
    cli.put_key(&admin).expect("put");
    assert!(cli.put_key(&reader).is_err(), "a duplicate id is refused");

    let found = server.key(&reader.id).expect("read").expect("found");
    assert_eq!(found, reader);
    let (_, secret) = keys::split(&reader_secret).expect("splits");
    assert!(keys::matches(&found, secret));
    assert_eq!(server.key("0000").expect("read"), None);
    let listed: Vec<_> = server
        .keys()
        .expect("list")
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, vec![reader.id.clone(), admin.id.clone()]);

    assert!(cli.revoke_key(&reader.id, 30).expect("revoke"));
    assert!(
        !cli.revoke_key(&reader.id, 40).expect("revoke again"),
        "already revoked"
    );
    assert!(!cli.revoke_key("0000", 40).expect("revoke unknown"));
    let revoked = server.key(&reader.id).expect("read").expect("found");
    assert_eq!(revoked.revoked_at, Some(30));

    drop((cli, server));
    let bytes = std::fs::read(&path).expect("read the file");
    let wal = std::fs::read(dir.path().join("trellis.db-wal")).unwrap_or_default();
    let needle = secret.as_bytes();
    for content in [&bytes, &wal] {
        assert!(
            !content.windows(needle.len()).any(|window| window == needle),
            "the secret is not stored"
        );
    }
}
