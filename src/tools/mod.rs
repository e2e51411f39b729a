//! Tools beside the server, built only with the `bench` feature: the
//! benchmarks (`fengqiao bench …`), which drive the whole app in process.

pub mod bench;
pub mod bench_login;
