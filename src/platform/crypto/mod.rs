//! Encryption of sensitive personal data at rest, with 国密 algorithms:
//! SM4-GCM (GB/T 32907 in an authenticated mode) for values, HMAC-SM3 for
//! blind indexes that allow equality search without decrypting.
//!
//! A ciphertext names the key that sealed it — `v1:<key_id>:<base64(nonce||ct)>`
//! — so several keys can coexist while `fengqiao keys rotate` re-encrypts
//! old rows (see `rotate`). Keys live in a key file (`FENGQIAO_KEY_FILE`,
//! default `<data_dir>/keys.json`, created with fresh keys on first use) or
//! in the environment (`FENGQIAO_KEYS`, the same JSON).

mod keys;
pub mod rotate;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, RwLock,
    },
};

use aes_gcm::{
    aead::{consts::U12, Aead, KeyInit, Payload},
    AesGcm, Nonce,
};
use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sm3::Sm3;

pub use keys::{KeyRing, KeySource};

/// SM4 in Galois/Counter Mode with a 96-bit nonce.
type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

const FORMAT: &str = "v1";
const NONCE_LEN: usize = 12;
/// How often (at most) a file-backed key ring checks whether
/// `fengqiao keys rotate` has written a new active key.
const RELOAD_CHECK_MS: i64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("密文格式无法识别")]
    Format,
    #[error("密钥 {0} 不在密钥环中;请检查密钥文件是否完整")]
    UnknownKey(String),
    #[error("密文校验失败:数据已被篡改或密钥不匹配")]
    Tampered,
    #[error("解密结果不是有效文本")]
    NotText,
    #[error("密钥配置错误:{0}")]
    Keys(String),
}

/// Which column a value belongs to. It is bound into the ciphertext as
/// associated data, so a ciphertext copied into another column fails to
/// decrypt instead of silently showing the wrong person's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field(pub &'static str);

impl Field {
    pub const MEMBER_MOBILE: Field = Field("node_members.mobile");
    pub const MEMBER_ID_NUMBER: Field = Field("node_members.id_number");
    pub const ORDER_CONTACT: Field = Field("orders.reporter_contact");
    /// The fingerprint of a name typed at a failed login that is no account.
    pub const AUDIT_UNKNOWN_USERNAME: Field = Field("audit_log.unknown_username");
}

/// The ciphers built from one key ring.
struct Ring {
    /// The ring as loaded, kept so that in-memory rings can rotate too.
    keys: KeyRing,
    active: String,
    ciphers: HashMap<String, Sm4Gcm>,
    /// Per key id, the key that MACs the audit chain (see `Crypto::mac`).
    mac_keys: HashMap<String, Vec<u8>>,
    index_key: Vec<u8>,
}

impl Ring {
    fn build(keys: &KeyRing) -> Result<Ring, CryptoError> {
        let mut ciphers = HashMap::new();
        let mut mac_keys = HashMap::new();
        for (id, key) in keys.decoded_keys()? {
            let cipher = Sm4Gcm::new_from_slice(&key).map_err(|_| CryptoError::Keys(format!("密钥 {id} 长度错误")))?;
            ciphers.insert(id.clone(), cipher);
            mac_keys.insert(id, derive_mac_key(&key));
        }
        if !ciphers.contains_key(&keys.active) {
            return Err(CryptoError::Keys(format!("当前密钥 {} 不在密钥列表中", keys.active)));
        }
        Ok(Ring {
            keys: keys.clone(),
            active: keys.active.clone(),
            ciphers,
            mac_keys,
            index_key: keys.decoded_index_key()?,
        })
    }
}

struct Inner {
    source: KeySource,
    ring: RwLock<Arc<Ring>>,
    last_check_ms: AtomicI64,
    file_stamp: RwLock<Option<std::time::SystemTime>>,
}

/// The application's encryption service; cheap to clone.
#[derive(Clone)]
pub struct Crypto(Arc<Inner>);

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        write!(f, "Crypto(active={}, source={:?})", self.active_key_id(), self.0.source)
    }
}

impl Crypto {
    /// Loads the key ring from its source, creating a key file with fresh
    /// keys when none exists yet.
    pub fn open(source: KeySource) -> Result<Crypto, CryptoError> {
        let keys = source.load_or_create()?;
        let stamp = source.file_stamp();
        Ok(Crypto(Arc::new(Inner {
            ring: RwLock::new(Arc::new(Ring::build(&keys)?)),
            source,
            last_check_ms: AtomicI64::new(crate::platform::db::now_ms()),
            file_stamp: RwLock::new(stamp),
        })))
    }

    /// A key ring held only in memory (tests, benchmarks).
    pub fn in_memory(keys: KeyRing) -> Result<Crypto, CryptoError> {
        Crypto::open(KeySource::Memory(Box::new(keys)))
    }

    /// Fresh random keys in memory.
    pub fn ephemeral() -> Crypto {
        Crypto::in_memory(KeyRing::generate()).expect("generated keys are valid")
    }

    /// The key source chosen by the environment: `FENGQIAO_KEYS` if set,
    /// else `FENGQIAO_KEY_FILE`, else `<data_dir>/keys.json`.
    pub fn from_env(data_dir: &std::path::Path) -> Result<Crypto, CryptoError> {
        let source = match std::env::var("FENGQIAO_KEYS") {
            Ok(json) if !json.trim().is_empty() => KeySource::Env(json),
            _ => KeySource::File(
                std::env::var_os("FENGQIAO_KEY_FILE").map(PathBuf::from).unwrap_or_else(|| data_dir.join("keys.json")),
            ),
        };
        Crypto::open(source)
    }

    fn ring(&self) -> Arc<Ring> {
        self.0.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key file, when the keys come from one.
    pub fn key_file(&self) -> Option<&std::path::Path> {
        match &self.0.source {
            KeySource::File(p) => Some(p),
            _ => None,
        }
    }

    pub fn active_key_id(&self) -> String {
        self.ring().active.clone()
    }

    /// The ids of every key in the ring (never the keys).
    pub fn key_ids(&self) -> Vec<String> {
        self.ring().keys.keys.keys().cloned().collect()
    }

    /// Re-reads a key file another process (`fengqiao keys rotate`) may have
    /// changed; a no-op for other sources or an unchanged file.
    pub fn reload(&self) -> Result<bool, CryptoError> {
        let stamp = self.0.source.file_stamp();
        if stamp.is_none() || stamp == *self.0.file_stamp.read().unwrap_or_else(|e| e.into_inner()) {
            return Ok(false);
        }
        let keys = self.0.source.load_or_create()?;
        self.install(&keys)?;
        *self.0.file_stamp.write().unwrap_or_else(|e| e.into_inner()) = stamp;
        tracing::info!(active = %keys.active, "key ring reloaded");
        Ok(true)
    }

    fn install(&self, keys: &KeyRing) -> Result<(), CryptoError> {
        let ring = Arc::new(Ring::build(keys)?);
        *self.0.ring.write().unwrap_or_else(|e| e.into_inner()) = ring;
        Ok(())
    }

    fn maybe_reload(&self) {
        let now = crate::platform::db::now_ms();
        let last = self.0.last_check_ms.load(Ordering::Relaxed);
        if now - last < RELOAD_CHECK_MS || !self.0.source.is_file() {
            return;
        }
        self.0.last_check_ms.store(now, Ordering::Relaxed);
        if let Err(e) = self.reload() {
            tracing::error!(error = %e, "key file reload failed; keeping the loaded keys");
        }
    }

    /// Seals a value with the active key and a fresh random nonce.
    pub fn encrypt(&self, field: Field, plaintext: &str) -> Result<String, CryptoError> {
        self.maybe_reload();
        let ring = self.ring();
        let cipher = &ring.ciphers[&ring.active];
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(&Nonce::<U12>::from(nonce), Payload { msg: plaintext.as_bytes(), aad: field.0.as_bytes() })
            .map_err(|_| CryptoError::Tampered)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        Ok(format!("{FORMAT}:{}:{}", ring.active, B64.encode(blob)))
    }

    /// Opens a value sealed by any key in the ring; an unknown key id makes
    /// a file-backed ring re-read its file once (the key may be newer than
    /// this process).
    pub fn decrypt(&self, field: Field, sealed: &str) -> Result<String, CryptoError> {
        let (key_id, blob) = parse_sealed(sealed)?;
        let mut ring = self.ring();
        if !ring.ciphers.contains_key(key_id) && self.reload()? {
            ring = self.ring();
        }
        let cipher = ring.ciphers.get(key_id).ok_or_else(|| CryptoError::UnknownKey(key_id.to_string()))?;
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::<U12>::try_from(nonce).map_err(|_| CryptoError::Format)?;
        let plain =
            cipher.decrypt(&nonce, Payload { msg: ct, aad: field.0.as_bytes() }).map_err(|_| CryptoError::Tampered)?;
        String::from_utf8(plain).map_err(|_| CryptoError::NotText)
    }

    /// The key id a sealed value names, without decrypting it.
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        parse_sealed(sealed).ok().map(|(id, _)| id)
    }

    /// A keyed, deterministic fingerprint of a normalised value for equality
    /// search: HMAC-SM3(index_key, field || 0 || value), hex. Keyed so that
    /// a stolen database cannot be matched against a list of phone numbers.
    pub fn blind_index(&self, field: Field, normalized: &str) -> String {
        let ring = self.ring();
        let mut mac = <Hmac<Sm3> as KeyInit>::new_from_slice(&ring.index_key).expect("HMAC accepts any key length");
        mac.update(field.0.as_bytes());
        mac.update(&[0]);
        mac.update(normalized.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The id of the key new MACs are made with: the active key, after a
    /// look whether `fengqiao keys rotate` has changed it meanwhile.
    pub fn active_mac_key_id(&self) -> String {
        self.maybe_reload();
        self.active_key_id()
    }

    /// HMAC-SM3 of `data` under the MAC key of `key_id`, hex. The MAC key
    /// is derived from that encryption key, so it is kept and rotated with
    /// it and is never stored in the database: whoever can write the
    /// database still cannot forge a MAC. An unknown id makes a
    /// file-backed ring re-read its file once.
    pub fn mac(&self, key_id: &str, data: &[u8]) -> Result<String, CryptoError> {
        let mut ring = self.ring();
        if !ring.mac_keys.contains_key(key_id) && self.reload()? {
            ring = self.ring();
        }
        let key = ring.mac_keys.get(key_id).ok_or_else(|| CryptoError::UnknownKey(key_id.to_string()))?;
        let mut mac = <Hmac<Sm3> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        mac.update(data);
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// Adds a new active key, persists it, and returns its id. Old keys stay
    /// in the ring so existing ciphertexts still open.
    pub fn add_active_key(&self) -> Result<String, CryptoError> {
        // A key file may have been rotated by another process since loading.
        let mut keys = if self.0.source.is_file() { self.0.source.load_or_create()? } else { self.ring().keys.clone() };
        let id = keys.add_key();
        self.0.source.save(&keys)?;
        self.install(&keys)?;
        *self.0.file_stamp.write().unwrap_or_else(|e| e.into_inner()) = self.0.source.file_stamp();
        Ok(id)
    }
}

/// The MAC key that belongs to an encryption key: a one-way derivation
/// with its own label, so the two uses of the key never meet.
fn derive_mac_key(key: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sm3> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(b"fengqiao audit chain mac key v1");
    mac.finalize().into_bytes().to_vec()
}

fn parse_sealed(sealed: &str) -> Result<(&str, Vec<u8>), CryptoError> {
    let mut parts = sealed.splitn(3, ':');
    let (Some(FORMAT), Some(key_id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CryptoError::Format);
    };
    let blob = B64.decode(b64).map_err(|_| CryptoError::Format)?;
    // A GCM tag alone is 16 bytes; anything shorter was cut.
    if blob.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Format);
    }
    Ok((key_id, blob))
}

/// A sealed value plus its blind index, ready for an `*_enc` / `*_idx`
/// column pair.
pub struct Sealed {
    pub enc: String,
    pub idx: String,
}

impl Crypto {
    fn seal(&self, field: Field, normalized: &str) -> Result<Sealed, CryptoError> {
        Ok(Sealed { enc: self.encrypt(field, normalized)?, idx: self.blind_index(field, normalized) })
    }

    /// Encrypts an already-normalised mobile number for `node_members`.
    pub fn seal_mobile(&self, mobile: &crate::kernel::codes::MobilePhone) -> Result<Sealed, CryptoError> {
        self.seal(Field::MEMBER_MOBILE, mobile.as_str())
    }

    /// Encrypts a validated ID number (18 characters, upper-case `X`) for
    /// `node_members`; the blind index is over that normal form, so a
    /// 15-digit or lower-case `x` search finds the same member.
    pub fn seal_id_number(&self, id: &crate::kernel::codes::IdNumber) -> Result<Sealed, CryptoError> {
        self.seal(Field::MEMBER_ID_NUMBER, id.as_str())
    }
}

impl From<CryptoError> for crate::kernel::error::Error {
    fn from(e: CryptoError) -> Self {
        crate::kernel::error::Error::Internal(anyhow::Error::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_format() {
        let c = Crypto::ephemeral();
        let sealed = c.encrypt(Field::MEMBER_MOBILE, "13912345678").unwrap();
        assert!(sealed.starts_with(&format!("v1:{}:", c.active_key_id())), "{sealed}");
        assert!(!sealed.contains("13912345678"));
        assert_eq!(c.decrypt(Field::MEMBER_MOBILE, &sealed).unwrap(), "13912345678");
        // A fresh nonce each time: equal values do not look equal.
        assert_ne!(sealed, c.encrypt(Field::MEMBER_MOBILE, "13912345678").unwrap());
    }

    #[test]
    fn tampering_is_detected() {
        let c = Crypto::ephemeral();
        let sealed = c.encrypt(Field::MEMBER_MOBILE, "13912345678").unwrap();
        let (head, b64) = sealed.rsplit_once(':').unwrap();
        let mut blob = B64.decode(b64).unwrap();
        for i in [0, NONCE_LEN, blob.len() - 1] {
            blob[i] ^= 1;
            let forged = format!("{head}:{}", B64.encode(&blob));
            assert!(matches!(c.decrypt(Field::MEMBER_MOBILE, &forged), Err(CryptoError::Tampered)), "byte {i}");
            blob[i] ^= 1;
        }
        // Moved to another column: the associated data no longer matches.
        assert!(matches!(c.decrypt(Field("people.id_number"), &sealed), Err(CryptoError::Tampered)));
        // Another installation's key cannot open it.
        assert!(Crypto::ephemeral().decrypt(Field::MEMBER_MOBILE, &sealed).is_err());
        assert!(matches!(c.decrypt(Field::MEMBER_MOBILE, "13912345678"), Err(CryptoError::Format)));
        assert!(matches!(c.decrypt(Field::MEMBER_MOBILE, "v1:k1:AAAA"), Err(CryptoError::Format)));
    }

    #[test]
    fn old_keys_still_open_after_a_new_active_key() {
        let c = Crypto::ephemeral();
        let old = c.encrypt(Field::MEMBER_MOBILE, "13800138000").unwrap();
        let old_id = c.active_key_id();
        let new_id = c.add_active_key().unwrap();
        assert_ne!(old_id, new_id);
        let newest = c.add_active_key().unwrap();
        assert!(![old_id.as_str(), new_id.as_str()].contains(&newest.as_str()), "ids never repeat");
        let new_id = newest;
        let new = c.encrypt(Field::MEMBER_MOBILE, "13800138000").unwrap();
        assert_eq!(Crypto::key_id_of(&new), Some(new_id.as_str()));
        assert_eq!(c.decrypt(Field::MEMBER_MOBILE, &old).unwrap(), "13800138000");
        assert_eq!(c.decrypt(Field::MEMBER_MOBILE, &new).unwrap(), "13800138000");
    }

    #[test]
    fn blind_index_is_keyed_and_deterministic() {
        let keys = KeyRing::generate();
        let a = Crypto::in_memory(keys.clone()).unwrap();
        let b = Crypto::in_memory(keys).unwrap();
        let i = a.blind_index(Field::MEMBER_MOBILE, "13912345678");
        assert_eq!(i.len(), 64);
        assert_eq!(i, b.blind_index(Field::MEMBER_MOBILE, "13912345678"));
        assert_ne!(i, a.blind_index(Field::MEMBER_MOBILE, "13912345679"));
        assert_ne!(i, a.blind_index(Field("other"), "13912345678"));
        // ID numbers have their own domain: equal strings, different index.
        assert_ne!(i, a.blind_index(Field::MEMBER_ID_NUMBER, "13912345678"));
        assert_ne!(i, Crypto::ephemeral().blind_index(Field::MEMBER_MOBILE, "13912345678"));
    }

    /// GB/T 32907-2016 appendix A.1 and GB/T 32905-2016 appendix A.1: the
    /// primitives underneath are the standard ones.
    #[test]
    fn national_standard_test_vectors() {
        use sm4::cipher::{BlockCipherEncrypt, KeyInit as _};
        let key = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let sm4 = sm4::Sm4::new_from_slice(&key).unwrap();
        let mut block = sm4::cipher::Array::try_from(key.as_slice()).unwrap();
        sm4.encrypt_block(&mut block);
        assert_eq!(hex::encode(block), "681edf34d206965e86b3e94f536e4246");
        use sm3::Digest;
        assert_eq!(
            hex::encode(Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let a = Crypto::open(KeySource::File(path.clone())).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let b = Crypto::open(KeySource::File(path.clone())).unwrap();
        assert_eq!(a.active_key_id(), b.active_key_id());
        // Another process rotates: this one opens the new ciphertexts.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let new_id = b.add_active_key().unwrap();
        let sealed = b.encrypt(Field::MEMBER_MOBILE, "13912345678").unwrap();
        assert_eq!(a.decrypt(Field::MEMBER_MOBILE, &sealed).unwrap(), "13912345678");
        assert_eq!(a.active_key_id(), new_id);
    }
}

/// 32 random bytes, hex-encoded.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    hex::encode(bytes)
}
