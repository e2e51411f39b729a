//! The region and grid tree (一张网): district → subdistrict → community or
//! village → grid → building, with members per node and overlays
//! (作战单元, police zones) drawn across it.

pub mod api;
pub mod model;
pub mod overlays;
pub mod store;

pub use model::*;
