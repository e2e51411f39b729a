//! Attachments of work orders: photos and documents, checked by content,
//! stored under the data directory by their SHA-256, with a re-encoded
//! public copy and a thumbnail of every photo. Staff in scope get the
//! original; the resident portal only ever gets the public copy, and only
//! of the reporter's own photos and the result photos.

pub mod api;
pub mod content;
pub mod exif;
pub mod files;
pub mod store;
pub mod upload;

pub use store::{Attachment, PublicAttachment};

/// Size and count limits, from the command line (see `WebArgs`).
#[derive(Clone, Debug)]
pub struct Limits {
    pub image_bytes: u64,
    pub document_bytes: u64,
    /// Attachments on one order, all uploaders together.
    pub per_order: i64,
    /// Photos a resident may add to their own report.
    pub per_resident: i64,
    /// Files in one request.
    pub per_request: usize,
    /// The most one upload request may carry, files and fields together.
    pub request_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            image_bytes: 10 << 20,
            document_bytes: 20 << 20,
            per_order: 30,
            per_resident: 6,
            per_request: 9,
            request_bytes: 60 << 20,
        }
    }
}

impl Limits {
    /// The most one file may have before its type is known.
    pub fn file_bytes(&self) -> u64 {
        self.image_bytes.max(self.document_bytes)
    }

    /// The most a whole upload request may carry: never less than one
    /// file of the largest kind and its form.
    pub fn request_bytes(&self) -> u64 {
        self.request_bytes.max(self.file_bytes() + (1 << 20))
    }
}

impl crate::error::CodedError for content::ContentError {
    fn code(&self) -> &'static str {
        content::ContentError::code(self)
    }
}

/// Every error code this module answers with.
pub const CODES: &[&str] = &[
    "attachment.too_large",
    "attachment.type_unsupported",
    "attachment.photo_only",
    "attachment.image_unreadable",
    "attachment.image_dimensions",
    "attachment.too_many",
    "attachment.too_many_files",
    "attachment.bad_form",
    "attachment.no_file",
    "attachment.not_linkable",
    "attachment.order_closed",
    "attachment.portal_closed",
    "attachment.variant_unknown",
];

#[cfg(test)]
mod tests {
    #[test]
    fn error_codes_have_messages() {
        for code in super::CODES {
            assert!(crate::i18n::has(code), "catalogue lacks {code}");
        }
    }
}
