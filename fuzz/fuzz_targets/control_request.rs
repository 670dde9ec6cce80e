#![no_main]
//! cargo +nightly fuzz run control_request: see protocol::fuzzing.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    engine::control::fuzz_decode(data);
});
