//! AccessKey secrets at rest: sealed with the server key (ChaCha20-Poly1305, a random 96-bit
//! nonce per value, the AccessKey id as associated data so a sealed value cannot be moved to
//! another key's row). A sealed value is `v1.<base64 of nonce and ciphertext>`.
//!
//! The server key is 32 random bytes, kept as 64 hex digits in a file (mode 0600) or given
//! by the operator; without it the stored secrets cannot be read.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::io::Write;
use std::path::Path;

const PREFIX: &str = "v1.";

/// The key AccessKey secrets are sealed with.
#[derive(Clone)]
pub struct ServerKey([u8; 32]);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(<redacted>)")
    }
}

/// A server key that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ServerKeyError {
    #[error("a server key is 64 hex digits (32 bytes)")]
    Malformed,
    #[error("cannot read or create the server key file {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ServerKey {
    /// A new random key.
    pub fn generate() -> ServerKey {
        ServerKey(rand::random())
    }

    /// A key from its 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<ServerKey, ServerKeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| ServerKeyError::Malformed)?;
        Ok(ServerKey(bytes.try_into().map_err(|_| ServerKeyError::Malformed)?))
    }

    /// The key in `path`, or a new one written there (mode 0600) when the file is missing.
    ///
    /// A new key appears at `path` whole or not at all: it is written to a temporary file
    /// beside it (`.<file name>.<process id>.<random>.tmp`, synced), which is then linked to
    /// `path` (refused when another process made it first: theirs is used) and removed, and
    /// the directory synced. So a `kill -9` or a power cut never leaves a half-written key that
    /// every later start would refuse. An empty file, which an earlier version killed between
    /// making the file and writing into it left behind, never held a key that sealed anything:
    /// it is made again. (The temporary file of a process killed before its link stays; the
    /// caller may remove those of processes that are gone.)
    pub fn load_or_create(path: &Path) -> Result<ServerKey, ServerKeyError> {
        let io = |source| ServerKeyError::Io { path: path.display().to_string(), source };
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => return ServerKey::from_hex(&text),
            Ok(_) => match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(io(error)),
            },
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(io(error)),
            Err(_) => {}
        }
        let key = ServerKey::generate();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = dir.join(format!(".{file_name}.{}.{:08x}.tmp", std::process::id(), rand::random::<u32>()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&temp).and_then(|mut file| {
            file.write_all(format!("{}\n", hex::encode(key.0)).as_bytes())?;
            file.sync_all()
        });
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io(error));
        }
        let linked = match std::fs::hard_link(&temp, path) {
            // A file system without hard links: a rename is atomic too (but would replace a
            // key another process made meanwhile, so it is only the fallback).
            Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists && !path.exists() => {
                std::fs::rename(&temp, path)
            }
            linked => linked,
        };
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => {
                std::fs::File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
                Ok(key)
            }
            // Another process made it first: use theirs.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                ServerKey::from_hex(&std::fs::read_to_string(path).map_err(io)?)
            }
            Err(error) => Err(io(error)),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// Seals `secret` for the row of `id`.
    pub(crate) fn seal(&self, id: &str, secret: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: id.as_bytes() })
            .expect("ChaCha20-Poly1305 seals any message shorter than 256 GiB");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes))
    }

    /// Opens a value [`seal`](Self::seal)ed for `id`; `None` when it was sealed with another
    /// key, for another row, or altered.
    pub(crate) fn open(&self, id: &str, sealed: &str) -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain =
            self.cipher().decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: id.as_bytes() }).ok()?;
        String::from_utf8(plain).ok()
    }

    /// Whether a stored value is sealed (rather than plain text written before sealing).
    pub(crate) fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_row() {
        let key = ServerKey::generate();
        let sealed = key.seal("LTAIa", "the secret");
        assert!(ServerKey::is_sealed(&sealed) && !sealed.contains("the secret"));
        assert_eq!(key.open("LTAIa", &sealed).as_deref(), Some("the secret"));
        assert_eq!(key.open("LTAIb", &sealed), None, "bound to its row");
        assert_eq!(ServerKey::generate().open("LTAIa", &sealed), None, "bound to its key");
        assert_ne!(key.seal("LTAIa", "the secret"), sealed, "a fresh nonce each time");
        let mut altered = sealed.clone();
        altered.pop();
        assert_eq!(key.open("LTAIa", &altered), None);
        assert_eq!(format!("{key:?}"), "ServerKey(<redacted>)");
    }

    #[test]
    fn the_key_file_is_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let made = ServerKey::load_or_create(&path).unwrap();
        let again = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(made.0, again.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["server.key"], "no temporary file is left");
        // An empty file (an earlier version killed before writing the key) is made again.
        std::fs::write(&path, "").unwrap();
        let remade = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(remade.0, ServerKey::load_or_create(&path).unwrap().0);
        assert_ne!(remade.0, made.0);
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(ServerKey::load_or_create(&path), Err(ServerKeyError::Malformed)));
        assert!(ServerKey::from_hex(&"ab".repeat(32)).is_ok() && ServerKey::from_hex("abcd").is_err());
    }
}
