//! The memory budget's unit of account (`budget.rs`): a [`Meter`] of bytes
//! and the [`Charge`] a kept message holds on it. Shared vocabulary: it
//! names nothing else of core, so `message.rs` can use it.

use std::cell::Cell;
use std::rc::Rc;

/// Bytes of kept messages, shared by the core and every message's
/// [`Charge`] (one thread: a `Cell` is enough).
#[derive(Clone, Debug, Default)]
pub(crate) struct Meter(Rc<Cell<usize>>);

impl Meter {
    /// Bytes counted now.
    pub fn get(&self) -> usize {
        self.0.get()
    }
}

/// A kept message's share of the budget: counted when made, given back
/// when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    meter: Meter,
    bytes: usize,
}

impl Charge {
    /// Counts `bytes` on `meter` until the charge is dropped.
    pub fn new(meter: &Meter, bytes: usize) -> Charge {
        meter.0.set(meter.0.get().saturating_add(bytes));
        Charge {
            meter: meter.clone(),
            bytes,
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.meter
            .0
            .set(self.meter.0.get().saturating_sub(self.bytes));
    }
}

/// Bytes a kept message costs beyond its topic, payload and properties:
/// its struct, the `Rc` counts, allocator rounding.
pub(crate) const MESSAGE_OVERHEAD: usize = 128;
