//! `x509` fuzz target: see `tests/fuzz_support/x509_check.rs` for the
//! property checked. The same check replays the corpus under `cargo test`
//! (cargo feature `tls`, a default one).

#![no_main]

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::x509_check::check(data));
