pub mod jobs;
pub mod outbox;
