//! Attachments of work orders: photos and documents, checked by content,
//! stored under the data directory by their SHA-256, with a re-encoded
//! public copy and a thumbnail of every photo. Staff in scope get the
//! original; the resident portal only ever gets the public copy, and only
//! of the reporter's own photos and the result photos.

pub mod content;
pub mod exif;
pub mod files;
pub mod store;

pub use store::{Attachment, PublicAttachment};

pub use crate::web::UploadLimits as Limits;

impl crate::kernel::error::CodedError for content::ContentError {
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
            assert!(crate::kernel::i18n::has(code), "catalogue lacks {code}");
        }
    }
}
