//! Feeds arbitrary bytes to both gearbox-proto decoders, whole and in chunks, under the default
//! and tiny limits, checking the decoder guarantees listed in the shared decode loop.
//!
//! The loop lives in `crates/gearbox-proto/tests/support/decode_loop.rs`, so the fuzz corpus
//! replay test (`cargo test -p gearbox-proto --test fuzz_corpus`) runs exactly the same checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/gearbox-proto/tests/support/decode_loop.rs"]
mod decode_loop;

fuzz_target!(|data: &[u8]| {
    decode_loop::exercise(data);
});
