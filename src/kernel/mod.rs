//! Pure types and rules with no I/O and no web framework: error codes and
//! the message catalogue, validated codes (region codes, ID numbers, bounded
//! texts), geometry, the working-day clock, the caller (`CurrentUser`,
//! `Perm`, `Scope`) as plain data. Imports nothing else of ours.

pub mod clock;
pub mod code_tables;
pub mod codes;
pub mod error;
pub mod geo;
pub mod i18n;
pub mod perm;
pub mod policy;
pub mod principal;
pub mod redact;
pub mod scope;

impl error::CodedError for codes::CodeError {
    fn code(&self) -> &'static str {
        codes::CodeError::code(self)
    }
}

impl error::CodedError for clock::ClockError {
    fn code(&self) -> &'static str {
        clock::ClockError::code(self)
    }
}
