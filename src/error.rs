//! Error helpers shared by every module. Each module owns its own error enum (with the facts
//! of what failed); this module only renders them.

/// An error and its sources on one line, `outer: inner: innermost` (network errors keep the
/// useful part in their causes).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
