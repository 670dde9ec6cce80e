#![no_main]
//! cargo +nightly fuzz run presence: see protocol::fuzzing.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocol::fuzzing::presence(data);
});
