//! Every query passes through the local-data check; when the name is not
//! local (the common case) that check allocates nothing: neither
//! `LocalData::lookup` nor `LocalData::respond`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use heimdall_testkit::{CountingAllocator, allocations_during, messages};
use heimdall_wire::{Class, Message, NameBuf, RecordType};
use heimdall_zone::{LocalData, Outcome, Reply, parse_record_line, parse_zone};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn query(qname: &str) -> Vec<u8> {
    messages::query(qname, RecordType::A, 7, None)
}

#[test]
fn not_local_allocates_nothing() {
    let zone = parse_zone(
        "$ORIGIN example.com.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\n",
        "z",
        None,
        &mut |_| Err(std::io::ErrorKind::NotFound.into()),
    )
    .unwrap();
    let loose = parse_record_line("router.lan. A 192.168.1.1", None, 60).unwrap();
    let data = LocalData::builder()
        .zone(zone)
        .records([loose])
        .builtins(true)
        .build()
        .unwrap();
    let names = [
        "www.example.org.",
        "a.b.c.d.e.f.g.example.net.",
        "other.lan.",
        "1.1.15.172.in-addr.arpa.",
        ".",
    ];
    let queries: Vec<Vec<u8>> = names.iter().map(|name| query(name)).collect();
    let owned: Vec<NameBuf> = names
        .iter()
        .map(|name| NameBuf::from_presentation(name).unwrap())
        .collect();
    let mut buf = [0u8; 512];
    let (outcomes, allocations) = allocations_during(|| {
        let mut not_local = 0;
        for name in &owned {
            let outcome = data.lookup(&name.as_name(), RecordType::A, Class::IN, false);
            not_local += usize::from(outcome == Outcome::NotLocal);
        }
        for bytes in &queries {
            let message = Message::parse(bytes).unwrap();
            let reply = data.respond(&message, &mut buf, 512).unwrap();
            not_local += usize::from(reply == Reply::NotLocal);
        }
        not_local
    });
    assert_eq!(outcomes, 2 * names.len());
    assert_eq!(allocations, 0);

    // Control: an answer does allocate, so the counter works.
    let name = NameBuf::from_presentation("www.example.com.").unwrap();
    let (_, allocations) =
        allocations_during(|| data.lookup(&name.as_name(), RecordType::A, Class::IN, false));
    assert!(allocations > 0);
}
