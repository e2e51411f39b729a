//! The bytes of attachments under `<data_dir>/attachments/`, one file per
//! distinct content, named by its SHA-256 (`ab/ab12…`), with the public
//! copy and thumbnail of a photo beside it (`…​.public`, `…​.thumb`). A
//! write is durable before it returns: the file is synced, renamed into
//! place and its directory synced.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Original,
    Public,
    Thumb,
}

impl Variant {
    fn suffix(self) -> &'static str {
        match self {
            Variant::Original => "",
            Variant::Public => ".public",
            Variant::Thumb => ".thumb",
        }
    }
}

#[derive(Clone, Debug)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub fn new(data_dir: &Path) -> FileStore {
        FileStore { root: data_dir.join(crate::platform::ATTACHMENTS_DIR) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a variant of the content with this SHA-256 (hex) lives.
    pub fn path(&self, sha256: &str, variant: Variant) -> PathBuf {
        // The hash comes from our own rows; still, never let it name a path.
        debug_assert!(sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        self.root.join(&sha256[..2]).join(format!("{sha256}{}", variant.suffix()))
    }

    /// Writes the bytes durably unless the same content is already there.
    /// Returns whether this call created the file. Blocking.
    pub fn write(&self, sha256: &str, variant: Variant, bytes: &[u8]) -> std::io::Result<bool> {
        let path = self.path(sha256, variant);
        if path.exists() {
            return Ok(false);
        }
        let dir = path.parent().expect("a file under the root");
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        match tmp.persist_noclobber(&path) {
            Ok(_) => {}
            // Someone stored the same content meanwhile: theirs is ours.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e.error),
        }
        sync_dir(dir)?;
        Ok(true)
    }

    /// Removes a variant; a missing file is not an error. Blocking.
    pub fn remove(&self, sha256: &str, variant: Variant) {
        let path = self.path(sha256, variant);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, "could not remove an attachment file");
            }
        }
    }

    pub async fn read(&self, sha256: &str, variant: Variant) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(sha256, variant)).await
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_stored_once_under_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let sha = "ab".repeat(32);
        assert!(store.write(&sha, Variant::Original, b"one").unwrap());
        assert!(!store.write(&sha, Variant::Original, b"one").unwrap());
        assert!(store.write(&sha, Variant::Thumb, b"t").unwrap());
        let p = store.path(&sha, Variant::Thumb);
        assert!(p.starts_with(dir.path().join("attachments").join("ab")));
        assert!(p.to_string_lossy().ends_with(".thumb"));
        store.remove(&sha, Variant::Thumb);
        store.remove(&sha, Variant::Thumb);
        assert!(!p.exists());
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("attachments/ab")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
