//! `http` fuzz target: see `tests/fuzz_support/http_check.rs` for the
//! property checked. The same check replays the corpus under
//! `cargo test --features http`.

#![no_main]

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::http_check::check(data));
