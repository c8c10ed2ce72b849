//! Shared test helpers: load the example zone, ask questions through the
//! wire path, and decode replies with hickory-proto.

#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::Path;

use heimdall_wire::Message;
use heimdall_zone::{DelegationMode, LocalData, Reply, parse_zone_file};
use hickory_proto::op::{Edns, Message as HMessage, MessageType, OpCode, Query};
use hickory_proto::rr::{Name as HName, Record as HRecord, RecordType as HType};

pub fn example_data(mode: DelegationMode) -> LocalData {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones/example.com.zone");
    let records = parse_zone_file(&path, None).unwrap();
    LocalData::builder()
        .zone(records)
        .builtins(true)
        .delegation_mode(mode)
        .build()
        .unwrap()
}

pub fn query_bytes(id: u16, name: &str, rtype: HType, edns: bool) -> Vec<u8> {
    let mut message = HMessage::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(HName::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(1232);
        message.set_edns(opt);
    }
    message.to_vec().unwrap()
}

/// Send a query through `LocalData::respond` with a size limit.
pub fn respond(data: &LocalData, query: &[u8], limit: usize) -> (Reply, Option<HMessage>) {
    let parsed = Message::parse(query).unwrap();
    let mut buf = [0u8; 4096];
    let reply = data.respond(&parsed, &mut buf, limit).unwrap();
    let decoded = match reply {
        Reply::Written(len) => Some(HMessage::from_vec(&buf[..len]).unwrap()),
        _ => None,
    };
    (reply, decoded)
}

pub fn ask(data: &LocalData, name: &str, rtype: HType) -> HMessage {
    let (_, reply) = respond(data, &query_bytes(0x4242, name, rtype, false), 4096);
    reply.unwrap_or_else(|| panic!("{name} {rtype}: not answered locally"))
}

/// Records as comparable text: lower-cased owner, TTL, class, type, RDATA.
pub fn rr_set(records: &[HRecord]) -> BTreeSet<String> {
    records
        .iter()
        .map(|record| {
            format!(
                "{} {} {} {} {}",
                record.name.to_lowercase(),
                record.ttl,
                record.dns_class,
                record.record_type(),
                record.data
            )
        })
        .collect()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}
