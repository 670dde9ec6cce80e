#![no_main]
//! cargo +nightly fuzz run direct_message: see protocol::fuzzing.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    net::wire::fuzz_decode(data);
});
