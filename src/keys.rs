//! Ed25519 signing keys: generation, PEM files, key ids, and file-mode checks.
//!
//! * Private keys are PKCS#8 **v1** PEM (`-----BEGIN PRIVATE KEY-----`), the form
//!   `openssl genpkey -algorithm ed25519` writes and OpenSSL 3.0 reads. v2 (with the public
//!   key embedded) is accepted on input.
//! * Public keys are SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as `openssl pkey -pubout` writes.
//! * A key id is the SHA-256 of the public key's SPKI DER encoding, in lower-case hex:
//!   `openssl pkey -pubin -in k.pub -outform DER | sha256sum`.
//! * Private key files are created with mode `0600`; loading one that group or others can
//!   read is refused, as ssh does. Key material is zeroized when dropped.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::digest::Sha256;

/// Errors while reading, writing or using keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file could not be written.
    #[error("cannot write key file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The directory for a new key could not be created.
    #[error("cannot create the key directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Refusing to overwrite an existing key.
    #[error("{0} already exists; refusing to overwrite a key (choose another --out or remove it yourself)")]
    Exists(PathBuf),
    /// The private key is readable by group or others.
    #[error(
        "private key {path} is readable by group or others (mode {mode:04o}); custody refuses to use it. Fix: chmod 600 {path}"
    )]
    InsecureMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not an Ed25519 PKCS#8 private key.
    #[error("{path} is not an Ed25519 private key in PKCS#8 PEM form (-----BEGIN PRIVATE KEY-----)")]
    BadPrivateKey {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        source: ed25519_dalek::pkcs8::Error,
    },
    /// Not an Ed25519 SPKI public key.
    #[error("{path} is not an Ed25519 public key in SPKI PEM form (-----BEGIN PUBLIC KEY-----)")]
    BadPublicKey {
        /// The file (or a description of where the key came from).
        path: PathBuf,
        /// What the decoder said.
        source: ed25519_dalek::pkcs8::spki::Error,
    },
    /// PEM/DER encoding of a private key failed (should not happen).
    #[error("cannot encode private key: {0}")]
    EncodePrivate(ed25519_dalek::pkcs8::Error),
    /// PEM/DER encoding of a public key failed (should not happen).
    #[error("cannot encode public key: {0}")]
    EncodePublic(ed25519_dalek::pkcs8::spki::Error),
}

/// Maximum size of a key file we are willing to read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A key id: SHA-256 of the SPKI DER of an Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct KeyId(pub Sha256);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.hex())
    }
}

/// A public key we can verify with, and its id.
#[derive(Clone, Debug)]
pub struct PublicKey {
    /// The Ed25519 key.
    pub key: VerifyingKey,
    /// SHA-256 of its SPKI DER.
    pub id: KeyId,
    /// Where it was loaded from, for messages.
    pub origin: String,
}

impl PublicKey {
    /// Wrap a verifying key.
    pub fn new(key: VerifyingKey, origin: impl Into<String>) -> Self {
        let der = key.to_public_key_der().map(|d| d.as_bytes().to_vec()).unwrap_or_default();
        PublicKey { key, id: KeyId(Sha256::of(&der)), origin: origin.into() }
    }

    /// Parse SPKI PEM text.
    pub fn from_pem(pem: &str, origin: &Path) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| KeyError::BadPublicKey { path: origin.to_path_buf(), source: e })?;
        Ok(Self::new(key, origin.display().to_string()))
    }

    /// Load an SPKI PEM file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = read_small(path)?;
        Self::from_pem(&text, path)
    }

    /// SPKI PEM text.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).map_err(KeyError::EncodePublic)
    }
}

/// A signing key loaded into memory. Zeroized on drop (ed25519-dalek's `zeroize` feature).
pub struct SecretKey {
    key: SigningKey,
    /// The matching public key.
    pub public: PublicKey,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The identity of the file it was read from (or written to), when known: the collector
    /// never seals that file, whatever path reaches it ([`crate::collect::links`]).
    file: Option<crate::FileId>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(keyid {}, {})", self.public.id, self.path.display())
    }
}

impl SecretKey {
    /// Sign `msg` (pure Ed25519, RFC 8032).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// The key id.
    pub fn id(&self) -> KeyId {
        self.public.id
    }

    /// The device and inode of the key file, as it was when the key was read or written.
    pub fn file_id(&self) -> Option<crate::FileId> {
        self.file
    }

    /// Load a PKCS#8 PEM private key, refusing files readable by group or others.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        check_private_mode(path)?;
        let (text, file) = read_small_with_id(path)?;
        let text = Zeroizing::new(text);
        let key = SigningKey::from_pkcs8_pem(text.trim())
            .map_err(|e| KeyError::BadPrivateKey { path: path.to_path_buf(), source: e })?;
        let public = PublicKey::new(key.verifying_key(), path.display().to_string());
        Ok(SecretKey { key, public, path: path.to_path_buf(), file })
    }

    /// Generate a fresh key and write it to `path` (mode 0600, PKCS#8 v1) and `path.pub`
    /// (SPKI). Never overwrites an existing file.
    pub fn generate(path: &Path) -> Result<Self, KeyError> {
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let pub_path = pub_path_for(path);
        for p in [path, pub_path.as_path()] {
            if p.exists() {
                return Err(KeyError::Exists(p.to_path_buf()));
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| KeyError::CreateDir { path: dir.to_path_buf(), source })?;
        }
        let kp = KeypairBytes { secret_key: key.to_bytes(), public_key: None };
        let pem =
            kp.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).map_err(KeyError::EncodePrivate)?;
        write_new(path, pem.as_bytes(), 0o600)?;
        let public = PublicKey::new(key.verifying_key(), pub_path.display().to_string());
        write_new(&pub_path, public.to_pem()?.as_bytes(), 0o644)?;
        let file = fs::metadata(path).ok().map(|m| crate::FileId::of(&m));
        Ok(SecretKey { key, public, path: path.to_path_buf(), file })
    }
}

/// `key` → `key.pub`.
pub fn pub_path_for(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

fn read_small(path: &Path) -> Result<String, KeyError> {
    read_small_with_id(path).map(|(s, _)| s)
}

/// The text of a key file and the identity of the file opened (the one read, whatever its
/// path resolved to).
fn read_small_with_id(path: &Path) -> Result<(String, Option<crate::FileId>), KeyError> {
    use std::io::Read;
    let f = fs::File::open(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
    let id = f.metadata().ok().map(|m| crate::FileId::of(&m));
    let mut s = String::new();
    f.take(MAX_KEY_FILE)
        .read_to_string(&mut s)
        .map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
    Ok((s, id))
}

#[cfg(unix)]
fn check_private_mode(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecureMode { path: path.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => KeyError::Exists(path.to_path_buf()),
        _ => KeyError::Write { path: path.to_path_buf(), source },
    })?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(|source| KeyError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_roundtrips_and_refuses_loose_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let k = SecretKey::generate(&p).unwrap();
        let k2 = SecretKey::load(&p).unwrap();
        assert_eq!(k.id(), k2.id());
        let pubk = PublicKey::load(&pub_path_for(&p)).unwrap();
        assert_eq!(pubk.id, k.id());
        let pem = fs::read_to_string(&p).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(matches!(SecretKey::generate(&p), Err(KeyError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
            fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
            assert!(matches!(SecretKey::load(&p), Err(KeyError::InsecureMode { .. })));
        }
    }
}
