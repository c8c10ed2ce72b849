//! Criterion benchmarks for heimdall-wire: the per-packet costs the server
//! pays on every query (view + key), on every upstream answer (walk), and on
//! every synthesized reply (build).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, criterion_group, criterion_main};
use heimdall_benches::{typical_query, typical_response};
use heimdall_wire::{
    Class, EdnsOption, Flags, Message, MessageBuilder, Mx, NameBuf, OptSpec, QueryKey, RData,
    RecordType, Section,
};

fn view_query_and_key(c: &mut Criterion) {
    let query = typical_query();
    c.bench_function("wire/query_view_and_key", |b| {
        b.iter(|| {
            let (message, key) = QueryKey::from_packet(black_box(&query)).unwrap();
            black_box(message.id());
            black_box(&key);
        })
    });
    c.bench_function("wire/query_key_from_message", |b| {
        b.iter(|| {
            let message = Message::parse(black_box(&query)).unwrap();
            let key = QueryKey::from_message(&message).unwrap();
            black_box(&key);
        })
    });
    let mut key = QueryKey::from_packet(&query).unwrap().1;
    c.bench_function("wire/query_view_and_key_reused", |b| {
        b.iter(|| {
            let message = Message::parse(black_box(&query)).unwrap();
            key.fill_from(&message).unwrap();
            black_box(&key);
        })
    });
}

fn walk_response(c: &mut Criterion) {
    let response = typical_response();
    c.bench_function("wire/walk_5_record_response", |b| {
        b.iter(|| {
            let message = Message::parse(black_box(&response)).unwrap();
            let mut total = 0u32;
            for section in [Section::Answer, Section::Authority, Section::Additional] {
                for record in message.records(section) {
                    total = total
                        .wrapping_add(u32::from(record.rtype().0))
                        .wrapping_add(record.ttl())
                        .wrapping_add(record.rdata_bytes().len() as u32)
                        .wrapping_add(record.name().wire_len() as u32);
                }
            }
            black_box(total)
        })
    });
}

fn build_response(c: &mut Criterion) {
    let owner = NameBuf::from_presentation("example.com").unwrap();
    let exchanges = [
        NameBuf::from_presentation("mx1.example.com").unwrap(),
        NameBuf::from_presentation("mx2.example.com").unwrap(),
    ];
    let options = [EdnsOption {
        code: 10,
        data: b"0123456789abcdef",
    }];
    let mut buf = [0u8; 1232];
    c.bench_function("wire/build_5_record_response", |b| {
        b.iter(|| {
            let mut builder = MessageBuilder::new(&mut buf).unwrap();
            builder.set_id(black_box(0x4242));
            builder.set_flags(
                Flags::default()
                    .with_response(true)
                    .with_recursion_available(true),
            );
            builder
                .question(&owner.as_name(), RecordType::MX, Class::IN)
                .unwrap();
            for (preference, exchange) in (10u16..).zip(&exchanges) {
                let mx = RData::Mx(Mx {
                    preference,
                    exchange: exchange.as_name(),
                });
                builder
                    .record(
                        Section::Answer,
                        &owner.as_name(),
                        RecordType::MX,
                        Class::IN,
                        300,
                        &mx,
                    )
                    .unwrap();
            }
            for (last, exchange) in (1u8..).zip(&exchanges) {
                let a = RData::A(Ipv4Addr::new(192, 0, 2, last));
                builder
                    .record(
                        Section::Additional,
                        &exchange.as_name(),
                        RecordType::A,
                        Class::IN,
                        300,
                        &a,
                    )
                    .unwrap();
            }
            let ns = RData::Ns(exchanges[0].as_name());
            builder
                .record(
                    Section::Additional,
                    &owner.as_name(),
                    RecordType::NS,
                    Class::IN,
                    300,
                    &ns,
                )
                .unwrap();
            let opt = OptSpec {
                udp_payload_size: 1232,
                extended_rcode: 0,
                version: 0,
                dnssec_ok: false,
                options: &options,
            };
            builder.opt(&opt).unwrap();
            black_box(builder.finish())
        })
    });
}

criterion_group!(benches, view_query_and_key, walk_response, build_response);
criterion_main!(benches);
