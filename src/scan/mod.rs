//! Content scanning (placeholder while the dispatcher is written).
