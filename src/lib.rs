//! Fengqiao (枫桥): a platform for grassroots social governance.
//!
//! Modules are cut by domain: `tree` holds the region and grid tree (一张网),
//! `auth` users and sessions, `demo` the generated demo district. `http`
//! assembles the router; `db` chooses and migrates the storage backend.

pub mod attachments;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod bench_login;
pub mod cli;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod geo;
pub mod http;
pub mod i18n;
pub mod orders;
pub mod platform;
pub mod telemetry;
pub mod tree;
pub mod web;
