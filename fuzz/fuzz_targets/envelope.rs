#![no_main]
//! cargo +nightly fuzz run envelope: see protocol::fuzzing.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocol::fuzzing::envelope(data);
});
