//! Argon2id password hashing, run off the async executor.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};

/// A valid hash of a random password, verified against when the user does
/// not exist so that both paths cost the same.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J6kqZ5m3Jc2Vt1Dbq7oA2Q0Tt8S0x5l3rSKY9i0Gc8E";

pub fn hash_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with default parameters cannot fail")
        .to_string()
}

pub async fn hash(password: String) -> String {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await.expect("hashing task panicked")
}

pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_then_verify() {
        let h = super::hash_blocking("Fengqiao@2026");
        assert!(h.starts_with("$argon2id$"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert!(rt.block_on(super::verify("Fengqiao@2026".into(), h.clone())));
        assert!(!rt.block_on(super::verify("wrong".into(), h)));
        // The dummy hash parses, so unknown users pay the full verification.
        assert!(argon2::PasswordHash::new(super::DUMMY_HASH).is_ok());
    }
}
