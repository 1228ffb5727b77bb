//! The one integration-test binary: runs the real `modelvet` binary and asserts on exit codes
//! and the JSON report, never on human text.

// Test code may panic: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod archive_oracle;
mod cli;
mod explain;
mod fetch;
mod fetch_local;
mod formats;
mod import;
mod nginx;
mod pickle_oracle;
mod receipt;
mod registry;
mod robustness;
mod sandbox;
mod scan;
mod server;
mod support;
mod verify;
