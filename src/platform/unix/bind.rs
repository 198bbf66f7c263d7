//! Explaining a listener that cannot be bound, on Unix.

use std::io;

/// A hint to add to a bind error, when the error's text is not enough.
/// On Unix the system's own text ("Address already in use", "Permission
/// denied") says it.
pub fn hint(_e: &io::Error) -> Option<&'static str> {
    None
}
