//! Shared fixtures for heimdall's criterion benches: the typical messages
//! each bench measures, built once with heimdall-wire.

use std::net::Ipv4Addr;

use heimdall_wire::{
    Class, EdnsOption, Flags, MessageBuilder, Mx, NameBuf, OptSpec, RData, RecordType, Section,
};

fn name(text: &str) -> NameBuf {
    NameBuf::from_presentation(text).unwrap_or_else(|_| NameBuf::root())
}

/// A query as `dig www.example.com A` sends it: RD, EDNS with a cookie.
pub fn typical_query() -> Vec<u8> {
    let mut buf = [0u8; 512];
    let Ok(mut builder) = MessageBuilder::new(&mut buf) else {
        return Vec::new();
    };
    builder.set_id(0x1f2e);
    builder.set_flags(
        Flags::default()
            .with_recursion_desired(true)
            .with_authentic_data(true),
    );
    let _ = builder.question(&name("www.Example.com").as_name(), RecordType::A, Class::IN);
    let cookie = [EdnsOption {
        code: 10,
        data: b"\x01\x02\x03\x04\x05\x06\x07\x08",
    }];
    let opt = OptSpec {
        udp_payload_size: 1232,
        extended_rcode: 0,
        version: 0,
        dnssec_ok: false,
        options: &cookie,
    };
    let _ = builder.opt(&opt);
    let len = builder.finish();
    buf.get(..len).unwrap_or_default().to_vec()
}

/// The names of [`typical_response`], parsed once so that a bench can
/// time [`TypicalResponse::write`] alone.
pub struct TypicalResponse {
    owner: NameBuf,
    mx1: NameBuf,
    mx2: NameBuf,
    ns: NameBuf,
}

impl Default for TypicalResponse {
    fn default() -> Self {
        Self {
            owner: name("example.com"),
            mx1: name("mx1.example.com"),
            mx2: name("mx2.example.com"),
            ns: name("ns.example.com"),
        }
    }
}

impl TypicalResponse {
    /// Write the response into `buf` and return its length (0 if `buf`
    /// is shorter than a header).
    pub fn write(&self, buf: &mut [u8]) -> usize {
        let Ok(mut builder) = MessageBuilder::new(buf) else {
            return 0;
        };
        builder.set_id(0x1f2e);
        builder.set_flags(
            Flags::default()
                .with_response(true)
                .with_recursion_desired(true)
                .with_recursion_available(true),
        );
        let owner = self.owner.as_name();
        let _ = builder.question(&owner, RecordType::MX, Class::IN);
        for (preference, exchange) in [(10, &self.mx1), (20, &self.mx2)] {
            let mx = RData::Mx(Mx {
                preference,
                exchange: exchange.as_name(),
            });
            let _ = builder.record(Section::Answer, &owner, RecordType::MX, Class::IN, 300, &mx);
        }
        let _ = builder.record(
            Section::Authority,
            &owner,
            RecordType::NS,
            Class::IN,
            3600,
            &RData::Ns(self.ns.as_name()),
        );
        for (last, host) in [(1u8, &self.mx1), (2, &self.mx2)] {
            let a = RData::A(Ipv4Addr::new(192, 0, 2, last));
            let _ = builder.record(
                Section::Additional,
                &host.as_name(),
                RecordType::A,
                Class::IN,
                300,
                &a,
            );
        }
        let opt = OptSpec {
            udp_payload_size: 1232,
            extended_rcode: 0,
            version: 0,
            dnssec_ok: false,
            options: &[],
        };
        let _ = builder.opt(&opt);
        builder.finish()
    }
}

/// A compressed MX response with 5 records: 2 MX answers, 1 SOA-less NS
/// authority, 2 A glue records (plus the OPT).
pub fn typical_response() -> Vec<u8> {
    let mut buf = [0u8; 1232];
    let len = TypicalResponse::default().write(&mut buf);
    buf.get(..len).unwrap_or_default().to_vec()
}
