//! Fuzz target: `reassembly::fuzzing::tls` (see that module for how the
//! input is interpreted). Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reassembly::fuzzing::tls(data);
});
