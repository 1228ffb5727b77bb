//! Content scanning (the dispatcher is being written).

pub mod source;
