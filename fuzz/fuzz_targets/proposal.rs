#![no_main]
//! cargo +nightly fuzz run proposal: see protocol::fuzzing.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocol::fuzzing::proposal(data);
});
