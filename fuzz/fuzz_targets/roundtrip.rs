//! Parse, rebuild with `MessageBuilder::copy_record`, parse again: the two
//! views agree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    heimdall_wire::fuzzing::parse_rebuild_parse(data);
});
