//! Connector secrets at rest. The fields a connector's schema marks as secrets
//! ([`trellis_plugin_sdk::schema::SECRET_KEYWORD`]) are taken out of a source's config before it
//! is stored or shown, and sealed with the operator's key: XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`, an AEAD with a random 192-bit nonce per seal, so nonces never need a
//! counter across replicas), with the workspace and source id as associated data, so that a
//! sealed value copied into another source or workspace does not open.
//!
//! A sealed value is `v1.<key id>.<nonce and ciphertext>` in unpadded base64url; the key id is
//! the first 8 bytes of the key's SHA-256, so a value says which key sealed it. Rotation: the
//! operator adds a new key and keeps the old one among the previous keys; every start reseals
//! what an old key sealed with the current one, and once none is left the old key can go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde_json::Value;
use sha2::{Digest, Sha256};
use trellis_core::domain::WorkspaceId;

/// The environment variable that holds the current key (base64 of 32 bytes).
pub const KEY_ENV: &str = "TRELLIS_SECRETS_KEY";
/// The environment variable that holds previous keys, separated by commas, kept to open values
/// sealed before a rotation.
pub const PREVIOUS_KEYS_ENV: &str = "TRELLIS_SECRETS_PREVIOUS_KEYS";
/// What to tell an operator whose server has no key.
pub const HOW_TO_SET_A_KEY: &str = "set secrets.key_file in the server's config (or the TRELLIS_SECRETS_KEY environment variable) to a key made by `trellis secrets new-key`";

const VERSION: &str = "v1";
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// Why a secret could not be sealed or opened. Never holds a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "this server has no secrets key, so it cannot store or read connector secrets; {HOW_TO_SET_A_KEY}"
    )]
    NoKey,
    #[error(
        "the secrets were sealed with key {0}, which this server does not have; add that key to secrets.previous_key_files (or TRELLIS_SECRETS_PREVIOUS_KEYS), or set the source's secrets again"
    )]
    UnknownKey(String),
    #[error(
        "the sealed secrets do not open with key {0}: they were altered, or belong to another source"
    )]
    Tampered(String),
    #[error("the sealed secrets are not in a format this server reads ({0})")]
    Malformed(&'static str),
    #[error("{0}")]
    BadKey(String),
}

/// One key: its id and its cipher.
struct SealingKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl SealingKey {
    fn new(bytes: &[u8; KEY_LEN]) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
            id: hex(&digest[..8]),
            cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The keys a server seals and opens secrets with: the current one (seals and opens) and the
/// previous ones (open only).
#[derive(Default)]
pub struct SecretKeys {
    current: Option<SealingKey>,
    previous: Vec<SealingKey>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeys")
            .field("current", &self.current.as_ref().map(|key| &key.id))
            .field(
                "previous",
                &self.previous.iter().map(|key| &key.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Parses a key as written in a key file or the environment: base64 (standard or URL-safe,
/// padded or not) of 32 bytes, surrounding whitespace ignored.
pub fn parse_key(text: &str, source: &str) -> Result<[u8; KEY_LEN], SecretError> {
    let text = text.trim();
    let decoded = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        URL_SAFE_NO_PAD,
    ]
    .iter()
    .find_map(|engine| engine.decode(text).ok());
    match decoded {
        Some(bytes) if bytes.len() == KEY_LEN => {
            let mut key = [0; KEY_LEN];
            key.copy_from_slice(&bytes);
            Ok(key)
        }
        Some(bytes) => Err(SecretError::BadKey(format!(
            "the secrets key in {source} is {} bytes; it must be 32 bytes in base64 (make one with `trellis secrets new-key`)",
            bytes.len()
        ))),
        None => Err(SecretError::BadKey(format!(
            "the secrets key in {source} is not base64; it must be 32 bytes in base64 (make one with `trellis secrets new-key`)"
        ))),
    }
}

/// A new random key, in the form key files hold.
pub fn new_key() -> String {
    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Reads a key file; the error names the file and says what is wrong, never the key.
pub fn read_key_file(path: &Path) -> Result<[u8; KEY_LEN], SecretError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        SecretError::BadKey(format!(
            "cannot read the secrets key file {}: {error}",
            path.display()
        ))
    })?;
    parse_key(&text, &format!("the file {}", path.display()))
}

/// Writes a new key to `path`, readable by its owner only, unless the file exists. Returns
/// whether it wrote one.
pub fn create_key_file(path: &Path) -> std::io::Result<bool> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            writeln!(file, "{}", new_key())?;
            file.sync_all()?;
            Ok(true)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

/// Where a server's keys come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySettings {
    /// A file holding the current key; the [`KEY_ENV`] variable wins over it.
    pub key_file: Option<PathBuf>,
    /// Files holding previous keys; [`PREVIOUS_KEYS_ENV`] adds to them.
    pub previous_key_files: Vec<PathBuf>,
}

impl SecretKeys {
    /// Keys from raw bytes: the current one (if any) and the previous ones.
    pub fn new(current: Option<[u8; KEY_LEN]>, previous: &[[u8; KEY_LEN]]) -> Self {
        let current = current.map(|key| SealingKey::new(&key));
        let previous = previous
            .iter()
            .map(SealingKey::new)
            .filter(|key| current.as_ref().is_none_or(|current| current.id != key.id))
            .collect();
        Self { current, previous }
    }

    /// The keys `settings` and the environment name.
    pub fn load(settings: &KeySettings) -> Result<Self, SecretError> {
        let current = match std::env::var(KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Some(parse_key(&text, KEY_ENV)?),
            _ => settings
                .key_file
                .as_deref()
                .map(read_key_file)
                .transpose()?,
        };
        let mut previous = settings
            .previous_key_files
            .iter()
            .map(|path| read_key_file(path))
            .collect::<Result<Vec<_>, _>>()?;
        if let Ok(text) = std::env::var(PREVIOUS_KEYS_ENV) {
            for key in text.split(',').filter(|key| !key.trim().is_empty()) {
                previous.push(parse_key(key, PREVIOUS_KEYS_ENV)?);
            }
        }
        Ok(Self::new(current, &previous))
    }

    /// Whether a current key is set, so secrets can be stored.
    pub fn can_seal(&self) -> bool {
        self.current.is_some()
    }

    /// The id of the current key.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(|key| key.id.as_str())
    }

    /// Seals `secrets` (field name to value) for one source. An empty map seals to "".
    pub fn seal(
        &self,
        workspace: &WorkspaceId,
        source: &str,
        secrets: &BTreeMap<String, Value>,
    ) -> Result<String, SecretError> {
        if secrets.is_empty() {
            return Ok(String::new());
        }
        let key = self.current.as_ref().ok_or(SecretError::NoKey)?;
        let plaintext = serde_json::to_vec(secrets).expect("a map of JSON values serialises");
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(workspace, source);
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Malformed("the cipher refused to seal"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{VERSION}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// The id of the key that sealed `sealed`, or None for "" (no secrets).
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        sealed.split('.').nth(1)
    }

    /// Opens what [`SecretKeys::seal`] sealed for this source. "" opens to no secrets.
    pub fn open(
        &self,
        workspace: &WorkspaceId,
        source: &str,
        sealed: &str,
    ) -> Result<BTreeMap<String, Value>, SecretError> {
        if sealed.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SecretError::Malformed("expected v1.<key id>.<data>"));
        };
        let key = self
            .current
            .iter()
            .chain(&self.previous)
            .find(|key| key.id == id)
            .ok_or_else(|| {
                if self.current.is_none() && self.previous.is_empty() {
                    SecretError::NoKey
                } else {
                    SecretError::UnknownKey(id.to_owned())
                }
            })?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretError::Malformed("the data is not base64url"))?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Malformed("the data is too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let aad = associated_data(workspace, source);
        let plaintext = key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Tampered(id.to_owned()))?;
        serde_json::from_slice(&plaintext)
            .map_err(|_| SecretError::Malformed("the opened secrets are not a JSON object"))
    }

    /// Whether `sealed` was sealed with another key than the current one (and should be sealed
    /// again with it).
    pub fn is_stale(&self, sealed: &str) -> bool {
        match (Self::key_id_of(sealed), self.current_id()) {
            (Some(id), Some(current)) => id != current,
            _ => false,
        }
    }
}

fn associated_data(workspace: &WorkspaceId, source: &str) -> Vec<u8> {
    format!("trellis source secrets\0{}\0{source}", workspace.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workspace(id: &str) -> WorkspaceId {
        WorkspaceId::parse(id).unwrap()
    }

    fn secrets() -> BTreeMap<String, Value> {
        BTreeMap::from([("api_key".to_owned(), json!("k-123456"))])
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_hides_the_secret() {
        let keys = SecretKeys::new(Some([7; 32]), &[]);
        let sealed = keys.seal(&workspace("a"), "forum", &secrets()).unwrap();
        assert!(sealed.starts_with("v1."), "{sealed}");
        assert!(!sealed.contains("k-123456"));
        assert_eq!(
            keys.open(&workspace("a"), "forum", &sealed).unwrap(),
            secrets()
        );
        // A fresh nonce every time.
        assert_ne!(
            sealed,
            keys.seal(&workspace("a"), "forum", &secrets()).unwrap()
        );
    }

    #[test]
    fn a_sealed_value_moved_to_another_source_or_workspace_does_not_open() {
        let keys = SecretKeys::new(Some([7; 32]), &[]);
        let sealed = keys.seal(&workspace("a"), "forum", &secrets()).unwrap();
        assert!(matches!(
            keys.open(&workspace("b"), "forum", &sealed),
            Err(SecretError::Tampered(_))
        ));
        assert!(matches!(
            keys.open(&workspace("a"), "other", &sealed),
            Err(SecretError::Tampered(_))
        ));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.open(&workspace("a"), "forum", &altered).is_err());
    }

    #[test]
    fn rotation_opens_old_values_with_a_previous_key_and_marks_them_stale() {
        let old = SecretKeys::new(Some([1; 32]), &[]);
        let sealed = old.seal(&workspace("a"), "forum", &secrets()).unwrap();
        let rotated = SecretKeys::new(Some([2; 32]), &[[1; 32]]);
        assert!(rotated.is_stale(&sealed));
        assert_eq!(
            rotated.open(&workspace("a"), "forum", &sealed).unwrap(),
            secrets()
        );
        let resealed = rotated.seal(&workspace("a"), "forum", &secrets()).unwrap();
        assert!(!rotated.is_stale(&resealed));
        let new_only = SecretKeys::new(Some([2; 32]), &[]);
        assert!(new_only.open(&workspace("a"), "forum", &resealed).is_ok());
        let error = new_only
            .open(&workspace("a"), "forum", &sealed)
            .unwrap_err();
        assert!(matches!(error, SecretError::UnknownKey(_)), "{error}");
        assert!(error.to_string().contains("previous_key_files"), "{error}");
    }

    #[test]
    fn without_a_key_nothing_is_sealed_and_the_error_says_how_to_set_one() {
        let keys = SecretKeys::default();
        let error = keys.seal(&workspace("a"), "forum", &secrets()).unwrap_err();
        assert_eq!(error, SecretError::NoKey);
        assert!(error.to_string().contains("secrets.key_file"), "{error}");
        assert_eq!(
            keys.seal(&workspace("a"), "forum", &BTreeMap::new())
                .unwrap(),
            ""
        );
    }

    #[test]
    fn keys_parse_from_base64_and_bad_ones_are_named() {
        let key = new_key();
        assert!(parse_key(&format!("  {key}\n"), "test").is_ok());
        let short = parse_key("AAAA", "the file k").unwrap_err().to_string();
        assert!(
            short.contains("the file k") && short.contains("3 bytes"),
            "{short}"
        );
        assert!(parse_key("not base64!", "x").is_err());
    }

    #[test]
    fn a_key_file_is_written_once_and_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        assert!(create_key_file(&path).unwrap());
        let first = read_key_file(&path).unwrap();
        assert!(!create_key_file(&path).unwrap());
        assert_eq!(read_key_file(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
