//! The parser and the lookup never panic, whatever the input.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use heimdall_wire::{Class, NameBuf, RecordType};
use heimdall_zone::{LocalData, Outcome, parse_record_line, parse_zone};
use proptest::prelude::*;

fn pieces() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("@".to_owned()),
        Just("$ORIGIN".to_owned()),
        Just("$TTL".to_owned()),
        Just("$INCLUDE".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just(";".to_owned()),
        Just("\\#".to_owned()),
        Just("IN".to_owned()),
        Just("SOA".to_owned()),
        Just("TXT".to_owned()),
        Just("NAPTR".to_owned()),
        Just("CAA".to_owned()),
        Just("TYPE65280".to_owned()),
        "[a-z0-9.*\\\\]{0,12}",
        "[0-9]{1,6}",
    ];
    proptest::collection::vec(token, 0..40).prop_map(|tokens| tokens.join(" "))
}

proptest! {
    #[test]
    fn parser_never_panics(text in pieces()) {
        let origin = NameBuf::from_presentation("p.test.").unwrap();
        let parsed = parse_zone(&text, "p.zone", Some(&origin), &mut |_| Ok(text.clone()));
        let _ = parse_record_line(&text, None, 60);
        let built = parsed
            .ok()
            .and_then(|records| LocalData::builder().records(records.clone()).zone(records).build().ok());
        if let Some(data) = built {
            for name in ["p.test.", "x.p.test.", "a.b.p.test.", "*.p.test."] {
                let name = NameBuf::from_presentation(name).unwrap();
                for rtype in [RecordType::A, RecordType::TXT, RecordType::ANY, RecordType::DS] {
                    let outcome = data.lookup(&name.as_name(), rtype, Class::IN, false);
                    if let Outcome::Answer(answer) = outcome {
                        prop_assert!(answer.answer.len() <= 64 * 10);
                    }
                }
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_zone(&text, "a.zone", None, &mut |_| Err(std::io::ErrorKind::NotFound.into()));
    }
}
