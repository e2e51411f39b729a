//! Black-box tests through the real HTTP server, on SQLite and PostgreSQL.
//! All integration tests live in this one binary to keep linking cheap.

mod helpers;

mod attachments;
mod audit;
mod authz;
mod backup;
mod binary;
mod demo;
mod durability;
mod field;
mod hardening;
mod identity;
mod layers;
mod migrations;
mod notify;
mod ops;
mod orders;
mod outbox;
mod pages;
mod portal;
mod privacy;
mod queues;
mod refusals;
mod session;
mod settings;
mod tree;
