//! modelvet: take a machine-learning model from the internet and run it locally, safely.
//!
//! The library never prints and never exits; it returns values that the `modelvet` binary
//! renders. Modules are the architecture and depend on each other in one direction only:
//! `error` and `finding` at the top, then `scan`, `policy`, `report`.
#![forbid(unsafe_code)]

pub mod finding;
pub mod scan;
