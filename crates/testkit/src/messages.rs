//! Makers of the DNS messages tests keep needing: a client query, and an
//! upstream's positive or NXDOMAIN answer to a query. They panic on misuse:
//! they are for tests only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;

use heimdall_wire::{
    Class, Flags, Message, MessageBuilder, NameBuf, OptSpec, RData, Rcode, RecordType, Section, Soa,
};

/// The parsed name, for tests that write names as text.
pub fn name(text: &str) -> NameBuf {
    NameBuf::from_presentation(text).expect("a valid name")
}

fn bytes(buf: &[u8], len: usize) -> Vec<u8> {
    buf.get(..len).unwrap_or_default().to_vec()
}

/// A recursive query (RD set) for `qname`/`qtype` with ID `id`; with EDNS
/// when `edns` gives (UDP payload size, DO bit).
pub fn query(qname: &str, qtype: RecordType, id: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(id);
    builder.set_flags(Flags::default().with_recursion_desired(true));
    builder
        .question(&name(qname).as_name(), qtype, Class::IN)
        .unwrap();
    if let Some((udp_payload_size, dnssec_ok)) = edns {
        let opt = OptSpec {
            udp_payload_size,
            extended_rcode: 0,
            version: 0,
            dnssec_ok,
            options: &[],
        };
        builder.opt(&opt).unwrap();
    }
    let len = builder.finish();
    bytes(&buf, len)
}

/// Start an answer to `query`: same ID and question, QR and RA set.
fn answer_builder<'b>(query: &[u8], buf: &'b mut [u8], rcode: Rcode) -> MessageBuilder<'b> {
    let query = Message::parse(query).unwrap();
    let question = query.question().unwrap();
    let mut builder = MessageBuilder::new(buf).unwrap();
    builder.set_id(query.id());
    builder.set_flags(
        Flags::default()
            .with_response(true)
            .with_recursion_desired(query.flags().recursion_desired())
            .with_recursion_available(true)
            .with_rcode(rcode),
    );
    builder
        .question(&question.name, question.qtype, question.qclass)
        .unwrap();
    builder
}

/// An upstream's answer to `query` with `records` A records (192.0.2.1,
/// 192.0.2.2, ...) of TTL `ttl` for the question name.
pub fn a_answer(query: &[u8], records: u8, ttl: u32) -> Vec<u8> {
    let owner = NameBuf::from_name(&Message::parse(query).unwrap().question().unwrap().name);
    let mut buf = vec![0u8; 65_535];
    let mut builder = answer_builder(query, &mut buf, Rcode::NOERROR);
    for last in 1..=records {
        let rdata = RData::A(Ipv4Addr::new(192, 0, 2, last));
        builder
            .record(
                Section::Answer,
                &owner.as_name(),
                RecordType::A,
                Class::IN,
                ttl,
                &rdata,
            )
            .unwrap();
    }
    let len = builder.finish();
    bytes(&buf, len)
}

/// An upstream's answer to `query` with one A record, `address`, of TTL
/// `ttl` for the question name (as the question writes it).
pub fn a_answer_to(query: &[u8], address: Ipv4Addr, ttl: u32) -> Vec<u8> {
    let owner = NameBuf::from_name(&Message::parse(query).unwrap().question().unwrap().name);
    let mut buf = vec![0u8; 512];
    let mut builder = answer_builder(query, &mut buf, Rcode::NOERROR);
    builder
        .record(
            Section::Answer,
            &owner.as_name(),
            RecordType::A,
            Class::IN,
            ttl,
            &RData::A(address),
        )
        .unwrap();
    let len = builder.finish();
    bytes(&buf, len)
}

/// An upstream's NXDOMAIN answer to `query`, with the SOA of `example.`
/// (TTL `soa_ttl`, MINIMUM `minimum`) in the authority section.
pub fn nxdomain_answer(query: &[u8], soa_ttl: u32, minimum: u32) -> Vec<u8> {
    let (zone, mname, rname) = (
        name("example"),
        name("ns.example"),
        name("hostmaster.example"),
    );
    let mut buf = vec![0u8; 512];
    let mut builder = answer_builder(query, &mut buf, Rcode::NXDOMAIN);
    let soa = RData::Soa(Soa {
        mname: mname.as_name(),
        rname: rname.as_name(),
        serial: 1,
        refresh: 2,
        retry: 3,
        expire: 4,
        minimum,
    });
    builder
        .record(
            Section::Authority,
            &zone.as_name(),
            RecordType::SOA,
            Class::IN,
            soa_ttl,
            &soa,
        )
        .unwrap();
    let len = builder.finish();
    bytes(&buf, len)
}

/// A query for `qname` with EDNS (1232 bytes, DO clear) and a
/// COOKIE option of `cookie` (client cookie, then any server cookie; any
/// length, so malformed ones can be sent too), for the tests of server
/// cookies toward clients.
pub fn query_with_cookie(qname: &str, qtype: RecordType, id: u16, cookie: &[u8]) -> Vec<u8> {
    query_with_options(qname, qtype, id, &[(heimdall_wire::edns::COOKIE, cookie)])
}

/// A query for `qname` with EDNS (1232 bytes, DO clear) carrying these
/// `(code, data)` options in order.
pub fn query_with_options(
    qname: &str,
    qtype: RecordType,
    id: u16,
    options: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(id);
    builder.set_flags(Flags::default().with_recursion_desired(true));
    builder
        .question(&name(qname).as_name(), qtype, Class::IN)
        .unwrap();
    let options: Vec<heimdall_wire::EdnsOption<'_>> = options
        .iter()
        .map(|(code, data)| heimdall_wire::EdnsOption { code: *code, data })
        .collect();
    let opt = OptSpec {
        udp_payload_size: 1232,
        extended_rcode: 0,
        version: 0,
        dnssec_ok: false,
        options: &options,
    };
    builder.opt(&opt).unwrap();
    let len = builder.finish();
    bytes(&buf, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makers_build_what_they_say() {
        let q = query("Www.Example", RecordType::AAAA, 7, Some((1232, true)));
        let parsed = Message::parse(&q).unwrap();
        assert_eq!(parsed.id(), 7);
        assert!(parsed.opt().unwrap().dnssec_ok());
        assert_eq!(parsed.question().unwrap().qtype, RecordType::AAAA);
        let a = a_answer(&query("a.example", RecordType::A, 9, None), 3, 60);
        let parsed = Message::parse(&a).unwrap();
        assert_eq!((parsed.id(), parsed.answers().count()), (9, 3));
        assert!(parsed.answers().all(|record| record.ttl() == 60));
        let nx = nxdomain_answer(&q, 300, 30);
        let parsed = Message::parse(&nx).unwrap();
        assert_eq!(parsed.rcode(), Rcode::NXDOMAIN);
        assert_eq!(parsed.authorities().next().unwrap().ttl(), 300);
    }
}
