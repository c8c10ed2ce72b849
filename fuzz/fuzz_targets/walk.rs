//! Walking every section of any bytes never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    heimdall_wire::fuzzing::walk_any_bytes(data);
});
