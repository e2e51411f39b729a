//! The key ring and where it is kept.
//!
//! ```json
//! {"active": "k2", "keys": {"k1": "<32 hex>", "k2": "<32 hex>"}, "index_key": "<64 hex>"}
//! ```
//! SM4 keys are 128-bit. The blind-index key is separate and does not
//! rotate with the encryption keys: changing it would need every index
//! recomputed at once, and it protects searchability, not confidentiality.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::CryptoError;

#[derive(Clone, Serialize, Deserialize)]
pub struct KeyRing {
    pub active: String,
    pub keys: BTreeMap<String, String>,
    pub index_key: String,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Key ids go into every ciphertext between colons.
fn valid_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl KeyRing {
    pub fn generate() -> KeyRing {
        let mut keys = BTreeMap::new();
        keys.insert("k1".to_string(), random_hex(16));
        KeyRing { active: "k1".into(), keys, index_key: random_hex(32) }
    }

    /// Adds a fresh key as the active one; ids count up: k1, k2, …
    pub fn add_key(&mut self) -> String {
        let next = self.keys.keys().filter_map(|k| k.strip_prefix('k')?.parse::<u64>().ok()).max().unwrap_or(0) + 1;
        let id = format!("k{next}");
        self.keys.insert(id.clone(), random_hex(16));
        self.active = id.clone();
        id
    }

    pub(super) fn decoded_keys(&self) -> Result<Vec<(String, Vec<u8>)>, CryptoError> {
        self.keys
            .iter()
            .map(|(id, k)| {
                if !valid_key_id(id) {
                    return Err(CryptoError::Keys(format!("密钥编号 `{id}` 只能含字母、数字、- 和 _")));
                }
                match hex::decode(k) {
                    Ok(b) if b.len() == 16 => Ok((id.clone(), b)),
                    _ => Err(CryptoError::Keys(format!("密钥 {id} 应为32位十六进制(128位SM4密钥)"))),
                }
            })
            .collect()
    }

    pub(super) fn decoded_index_key(&self) -> Result<Vec<u8>, CryptoError> {
        match hex::decode(&self.index_key) {
            Ok(b) if b.len() >= 16 => Ok(b),
            _ => Err(CryptoError::Keys("index_key 应为至少32位十六进制".into())),
        }
    }
}

/// Where the key ring comes from.
pub enum KeySource {
    File(PathBuf),
    /// JSON from `FENGQIAO_KEYS`; read-only, so it cannot rotate itself.
    Env(String),
    Memory(Box<KeyRing>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "file {}", p.display()),
            KeySource::Env(_) => f.write_str("env FENGQIAO_KEYS"),
            KeySource::Memory(_) => f.write_str("memory"),
        }
    }
}

impl KeySource {
    pub fn is_file(&self) -> bool {
        matches!(self, KeySource::File(_))
    }

    pub(super) fn file_stamp(&self) -> Option<std::time::SystemTime> {
        match self {
            KeySource::File(p) => std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            _ => None,
        }
    }

    pub(super) fn load_or_create(&self) -> Result<KeyRing, CryptoError> {
        match self {
            KeySource::Memory(k) => Ok((**k).clone()),
            KeySource::Env(json) => serde_json::from_str(json)
                .map_err(|e| CryptoError::Keys(format!("FENGQIAO_KEYS 不是有效的密钥JSON:{e}"))),
            KeySource::File(path) if path.exists() => read_file(path),
            KeySource::File(path) => {
                let keys = KeyRing::generate();
                write_file(path, &keys, true)?;
                tracing::warn!(path = %path.display(), "created a new key file; back it up — without it the encrypted data cannot be read");
                Ok(keys)
            }
        }
    }

    pub(super) fn save(&self, keys: &KeyRing) -> Result<(), CryptoError> {
        match self {
            KeySource::File(path) => write_file(path, keys, false),
            KeySource::Env(_) => Err(CryptoError::Keys(
                "密钥来自环境变量 FENGQIAO_KEYS,无法自动轮换;请改用密钥文件(FENGQIAO_KEY_FILE)".into(),
            )),
            // Tests keep rotated keys in the process only.
            KeySource::Memory(_) => Ok(()),
        }
    }
}

fn read_file(path: &Path) -> Result<KeyRing, CryptoError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CryptoError::Keys(format!("无法读取密钥文件 {}:{e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| CryptoError::Keys(format!("密钥文件 {} 格式错误:{e}", path.display())))
}

/// Writes the key file readable by its owner only. A new file is created
/// exclusively; an update goes to a temporary file that replaces the old
/// one by rename, so a crash never leaves a half-written key ring.
fn write_file(path: &Path, keys: &KeyRing, create_new: bool) -> Result<(), CryptoError> {
    let err = |e: std::io::Error| CryptoError::Keys(format!("无法写入密钥文件 {}:{e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let json = serde_json::to_string_pretty(keys).expect("key ring serialises");
    let target = if create_new { path.to_path_buf() } else { path.with_extension("json.tmp") };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if create_new {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&target).map_err(err)?;
    f.write_all(json.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    if !create_new {
        std::fs::rename(&target, path).map_err(err)?;
    }
    Ok(())
}
