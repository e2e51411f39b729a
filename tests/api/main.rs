//! Black-box tests through the real HTTP server, on SQLite and PostgreSQL.
//! All integration tests live in this one binary to keep linking cheap.

mod helpers;

mod attachments;
mod audit;
mod authz;
mod backup;
mod demo;
mod durability;
mod hardening;
mod identity;
mod migrations;
mod ops;
mod orders;
mod pages;
mod privacy;
mod refusals;
mod session;
mod tree;
