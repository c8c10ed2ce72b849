//! Criterion benchmarks for heimdall-wire: the per-packet costs the server
//! pays on every query (view + key), on every upstream answer (walk), and on
//! every synthesized reply (build).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use heimdall_benches::{TypicalResponse, typical_query, typical_response};
use heimdall_wire::{Message, QueryKey, Section};

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
    let response = TypicalResponse::default();
    let mut buf = [0u8; 1232];
    let len = response.write(&mut buf);
    assert_eq!(buf.get(..len), Some(typical_response().as_slice()));
    c.bench_function("wire/build_5_record_response", |b| {
        b.iter(|| black_box(response.write(black_box(&mut buf))))
    });
}

criterion_group!(benches, view_query_and_key, walk_response, build_response);
criterion_main!(benches);
