//! Geometry of the grid: validated boundaries and point lookup.

pub mod polygon;

impl crate::kernel::error::CodedError for polygon::PolygonError {
    fn code(&self) -> &'static str {
        polygon::PolygonError::code(self)
    }
}
