//! Fengqiao (枫桥): a platform for grassroots social governance.
//!
//! Layers, bottom to top (see ARCHITECTURE.md; `tests/api/layers.rs`
//! checks that no import runs downwards-up or in a circle):
//! - `kernel`: pure types and rules;
//! - `platform`: storage, encryption, sessions, logging;
//! - `web`: what every page and API handler shares (state, errors, shell,
//!   extractors, guards);
//! - the domains, in the order they may use each other: `audit`, `auth`
//!   (identity), `tree` (the grid), `attachments`, `orders`, `stats` (statistics and
//!   assessment);
//! - `demo`: the generated demo district (`fengqiao demo`);
//! - `app`: the composition root (router, serving, command line);
//! - `tools` (feature `bench`): the benchmarks, which drive the whole app.

pub mod app;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod demo;
pub mod kernel;
pub mod notify;
pub mod orders;
pub mod platform;
pub mod stats;
#[cfg(feature = "bench")]
pub mod tools;
pub mod tree;
pub mod web;
