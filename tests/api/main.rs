//! Black-box tests through the real HTTP server, on SQLite and PostgreSQL.
//! All integration tests live in this one binary to keep linking cheap.

mod helpers;

mod demo;
mod ops;
mod orders;
mod pages;
mod session;
mod tree;
