//! Check functions shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`)
//! and the corpus replay test (`tests/fuzz_corpus.rs`). Included with
//! `#[path]` from both, so one definition of "correct" serves libFuzzer and
//! `cargo test` alike. Each check panics on a violation and returns normally
//! on any input the broker handles correctly.
//!
//! Only boxmq's public API is used.

#![allow(dead_code)]

pub mod codec_check;
pub mod core_check;
#[cfg(feature = "http")]
pub mod http_check;
pub mod seeds;
pub mod store_check;
#[cfg(feature = "tls")]
pub mod tls_check;
pub mod topic_check;
#[cfg(feature = "websockets")]
pub mod ws_check;
#[cfg(feature = "tls")]
pub mod x509_check;

/// A cursor over fuzz input: every read succeeds (zeros past the end), so
/// the interpretation of any byte string is total.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}
