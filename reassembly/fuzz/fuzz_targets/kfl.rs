//! Fuzz target: `reassembly::fuzzing::kfl` — a query of any bytes is
//! compiled and, when it compiles, evaluated. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reassembly::fuzzing::kfl(data);
});
