//! Domain value types that validate when parsed (codes, texts, phone and
//! ID numbers) and the GB/T code tables used by forms.

pub mod code_tables;
pub mod codes;
pub mod redact;

impl crate::error::CodedError for codes::CodeError {
    fn code(&self) -> &'static str {
        codes::CodeError::code(self)
    }
}
