//! Name-affinity steering: the kernel delivers each UDP query to the core
//! that owns its name, so each name is cached on one core only and N cores
//! hold N shards' worth of distinct answers (`server.steering: name`).
//!
//! A classic BPF program on each listen address's `SO_REUSEPORT` group
//! hashes the query name as it sits in the datagram (the bytes from offset
//! 12, the question, up to its terminating zero byte or
//! [`HASHED_NAME_BYTES`], case folded by setting bit 0x20 so that
//! `WWW.Example.COM` and `www.example.com` meet) and returns
//! `hash % cores`, the index of the socket, which is the core's: the group's
//! sockets are bound in core order (`sockets::listen_per_core`). The hash
//! is FNV-1a with a per-process random basis, so an outsider cannot choose
//! names that all land on one core. [`owner`] computes the same in Rust
//! (the tests check they agree on real sockets).
//!
//! Why the kernel and not a hand-off between cores: the datagram reaches
//! the owner's socket directly, with no cross-core queue, no second copy,
//! and no shared cache. What it costs: a name's queries are served by one
//! core, so one name cannot take more than one core's rate (docs/TUNING.md
//! has the figure), and TCP (which the kernel steers at SYN time, before a
//! name is known) is served by whichever core accepted the connection,
//! from that core's cache.

use std::io;
use std::os::fd::RawFd;

use heimdall_udp::reuseport::{Instruction, attach_reuseport_program, jump, statement};

/// Name bytes hashed at most: names that agree on these go to one core
/// (which is correct, only less spread). 64 bytes keep the program at
/// about 650 instructions (the limit is 4,096).
pub(crate) const HASHED_NAME_BYTES: u32 = 64;
/// Where the question name starts in a DNS message.
const NAME_OFFSET: u32 = 12;
/// The FNV-1a 32-bit prime.
const FNV_PRIME: u32 = 16_777_619;

/// The hash the kernel program computes for the name in `message` (a DNS
/// message as received), before it is reduced to a core.
pub(crate) fn name_hash(message: &[u8], basis: u32) -> u32 {
    let mut hash = basis;
    let name = message
        .iter()
        .skip(NAME_OFFSET as usize)
        .take(HASHED_NAME_BYTES as usize);
    for &byte in name {
        if byte == 0 {
            break;
        }
        hash = (hash ^ u32::from(byte | 0x20)).wrapping_mul(FNV_PRIME);
    }
    hash ^ (hash >> 16)
}

/// The core that owns the query in `message` among `cores`, as the
/// kernel program computes it for a name not spread: the reference the
/// program is tested against.
#[cfg(test)]
pub(crate) fn owner(message: &[u8], basis: u32, cores: u32) -> u32 {
    name_hash(message, basis) % cores.max(1)
}

/// The classic BPF program computing [`owner`], except for the names whose
/// [`name_hash`] is in `spread` (the hot names, at most 250), which go to
/// a random core.
pub(crate) fn program(basis: u32, cores: u32, spread: &[u32]) -> Vec<Instruction> {
    use libc::{
        BPF_A, BPF_ABS, BPF_ALU, BPF_B, BPF_IMM, BPF_JA, BPF_JEQ, BPF_JGT, BPF_JMP, BPF_K, BPF_LD,
        BPF_LEN, BPF_MISC, BPF_MOD, BPF_MUL, BPF_OR, BPF_RET, BPF_RSH, BPF_TAX, BPF_TXA, BPF_W,
        BPF_X, BPF_XOR, SKF_AD_OFF, SKF_AD_RANDOM,
    };
    // Conditional jumps reach 255 instructions ahead.
    let spread = spread.get(..250).unwrap_or(spread);
    // The hash lives in X; A takes the length and each byte in turn.
    let mut program = vec![
        statement(BPF_LD | BPF_IMM, basis),
        statement(BPF_MISC | BPF_TAX, 0),
    ];
    // Each byte's block is 10 instructions; its two exits (the message
    // ends, or the name does) jump to its last one, which jumps to the
    // end (conditional jumps reach only 255 instructions ahead).
    for index in 0..HASHED_NAME_BYTES {
        let offset = NAME_OFFSET + index;
        let blocks_after = HASHED_NAME_BYTES - index - 1;
        program.extend([
            statement(BPF_LD | BPF_W | BPF_LEN, 0),
            // len > offset: the byte exists; else leave (skip 7).
            jump(BPF_JMP | BPF_JGT | BPF_K, offset, 0, 7),
            statement(BPF_LD | BPF_B | BPF_ABS, offset),
            // The name's end: leave (skip 5).
            jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0),
            statement(BPF_ALU | BPF_OR | BPF_K, 0x20),
            statement(BPF_ALU | BPF_XOR | BPF_X, 0),
            statement(BPF_ALU | BPF_MUL | BPF_K, FNV_PRIME),
            statement(BPF_MISC | BPF_TAX, 0),
            // Next block.
            statement(BPF_JMP | BPF_JA, 1),
            // The exit: past the remaining blocks.
            statement(BPF_JMP | BPF_JA, blocks_after * 10),
        ]);
    }
    program.extend([
        statement(BPF_MISC | BPF_TXA, 0),
        statement(BPF_ALU | BPF_RSH | BPF_K, 16),
        statement(BPF_ALU | BPF_XOR | BPF_X, 0),
    ]);
    // A spread name jumps past the remaining comparisons and the owner's
    // two instructions to the random pick.
    for (index, &hash) in spread.iter().enumerate() {
        let skip = (spread.len() - index - 1 + 2) as u8;
        program.push(jump(BPF_JMP | BPF_JEQ | BPF_K, hash, skip, 0));
    }
    program.extend([
        statement(BPF_ALU | BPF_MOD | BPF_K, cores.max(1)),
        statement(BPF_RET | BPF_A, 0),
        // The kernel's per-CPU pseudo-random number.
        statement(
            BPF_LD | BPF_W | BPF_ABS,
            (SKF_AD_OFF + SKF_AD_RANDOM) as u32,
        ),
        statement(BPF_ALU | BPF_MOD | BPF_K, cores.max(1)),
        statement(BPF_RET | BPF_A, 0),
    ]);
    program
}

/// Steer every group whose first socket is in `group_leaders` by name,
/// over `cores` sockets each.
pub(crate) fn attach(group_leaders: &[RawFd], basis: u32, cores: u32) -> io::Result<()> {
    let program = program(basis, cores, &[]);
    for &fd in group_leaders {
        attach_reuseport_program(fd, &program)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` (dotted, no trailing dot) with ID 0.
    fn query(name: &str) -> Vec<u8> {
        let mut message = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            message.push(label.len() as u8);
            message.extend_from_slice(label.as_bytes());
        }
        message.extend_from_slice(&[0, 0, 1, 0, 1]);
        message
    }

    #[test]
    fn the_owner_ignores_case_and_everything_after_the_name() {
        let lower = owner(&query("www.example.com"), 7, 16);
        assert_eq!(owner(&query("WWW.Example.COM"), 7, 16), lower);
        let mut with_id = query("www.example.com");
        with_id[0] = 0xab;
        with_id.extend_from_slice(&[0, 0, 41, 4, 208]);
        assert_eq!(owner(&with_id, 7, 16), lower);
    }

    #[test]
    fn names_spread_evenly_over_the_cores() {
        let cores = 8;
        let mut counts = [0u32; 8];
        for n in 0..8_000 {
            counts[owner(&query(&format!("host-{n}.zone.test")), 0x1234_5678, cores) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "uneven: {counts:?}"
        );
    }

    #[test]
    fn the_basis_changes_the_owners() {
        let moved = (0..1_000)
            .filter(|n| {
                let q = query(&format!("host-{n}.zone.test"));
                owner(&q, 1, 4) != owner(&q, 2, 4)
            })
            .count();
        assert!(moved > 600, "only {moved} of 1000 names moved");
    }

    #[test]
    fn short_and_long_messages_are_safe() {
        assert_eq!(owner(&[], 5, 3), owner(&[0; 12], 5, 3));
        let long = query(&"a".repeat(60).replace("", ".")[1..119]);
        assert!(owner(&long, 5, 3) < 3);
        assert_eq!(owner(&query("x"), 5, 1), 0);
    }

    /// `count` reuseport UDP sockets on one loopback port, bound in order.
    fn group(count: usize) -> Vec<std::net::UdpSocket> {
        use socket2::{Domain, Socket, Type};
        // A port no socket holds: a reuseport bind to port 0 may join
        // another group of this user (another test's), which would take a
        // share of the datagrams.
        let mut port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        (0..count)
            .map(|_| {
                let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
                socket.set_reuse_port(true).unwrap();
                let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
                socket.bind(&addr.into()).unwrap();
                port = socket.local_addr().unwrap().as_socket().unwrap().port();
                socket.set_nonblocking(true).unwrap();
                socket.into()
            })
            .collect()
    }

    #[test]
    fn the_kernel_delivers_each_name_to_the_socket_the_reference_names() {
        use std::os::fd::AsRawFd;
        let sockets = group(4);
        let basis = 0x9e37_79b9;
        attach(&[sockets[0].as_raw_fd()], basis, 4).unwrap();
        let to = sockets[0].local_addr().unwrap();
        // Many names, from many source ports: the flow hash would spread
        // them anywhere; the program must put each on its owner.
        let clients: Vec<_> = (0..16)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let sent = 400;
        for n in 0..sent {
            let name = if n % 2 == 0 {
                format!("host-{n}.zone.test")
            } else {
                format!("HOST-{n}.Zone.TEST")
            };
            clients[n % clients.len()]
                .send_to(&query(&name), to)
                .unwrap();
        }
        let mut received = 0;
        let mut per_socket = [0; 4];
        let mut buf = [0u8; 512];
        // Loopback delivers at once, but a loaded machine may take a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while received < sent && std::time::Instant::now() < deadline {
            for (index, socket) in sockets.iter().enumerate() {
                while let Ok(len) = socket.recv(&mut buf) {
                    assert_eq!(
                        owner(&buf[..len], basis, 4) as usize,
                        index,
                        "a query reached socket {index}, not its owner"
                    );
                    received += 1;
                    per_socket[index] += 1;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(received, sent);
        assert!(per_socket.iter().all(|&n| n > 50), "{per_socket:?}");
    }

    #[test]
    fn names_aimed_at_one_core_under_another_basis_spread_out() {
        use std::os::fd::AsRawFd;
        // An attacker who computed 400 names that all land on socket 0
        // for basis 1 (say, from a leaked or guessed basis) sends them to
        // a group steered with the basis this server drew: they spread
        // over the four sockets, so the flood does not pile on one core.
        let aimed: Vec<Vec<u8>> = (0..)
            .map(|n| query(&format!("flood-{n}.victim.example")))
            .filter(|q| owner(q, 1, 4) == 0)
            .take(400)
            .collect();
        let sockets = group(4);
        let basis = 0x5bd1_e995;
        attach(&[sockets[0].as_raw_fd()], basis, 4).unwrap();
        let to = sockets[0].local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for q in &aimed {
            client.send_to(q, to).unwrap();
        }
        let mut per_socket = [0usize; 4];
        let mut buf = [0u8; 512];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while per_socket.iter().sum::<usize>() < aimed.len() && std::time::Instant::now() < deadline
        {
            for (index, socket) in sockets.iter().enumerate() {
                while socket.recv(&mut buf).is_ok() {
                    per_socket[index] += 1;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(per_socket.iter().sum::<usize>(), aimed.len());
        assert!(
            per_socket.iter().all(|&n| n > 50),
            "names aimed at one core under another basis: {per_socket:?}"
        );
    }

    #[test]
    fn a_spread_name_reaches_every_socket_and_the_others_keep_their_owner() {
        use heimdall_udp::reuseport::attach_reuseport_program;
        use std::os::fd::AsRawFd;
        let sockets = group(4);
        let basis = 0x0bad_5eed;
        let hot = query("hot.example.com");
        let cold = query("cold.example.com");
        let spread = [1, name_hash(&hot, basis), 3];
        attach_reuseport_program(sockets[0].as_raw_fd(), &program(basis, 4, &spread)).unwrap();
        let to = sockets[0].local_addr().unwrap();
        // One client, one source port: by flow or by name all of these
        // would reach one socket.
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent = 400;
        let mut hot_per_socket = [0usize; 4];
        let mut cold_per_socket = [0usize; 4];
        let mut buf = [0u8; 512];
        let mut drain = |hot_per_socket: &mut [usize; 4], cold_per_socket: &mut [usize; 4]| {
            for (index, socket) in sockets.iter().enumerate() {
                while let Ok(len) = socket.recv(&mut buf) {
                    if buf[..len] == hot[..] {
                        hot_per_socket[index] += 1;
                    } else {
                        cold_per_socket[index] += 1;
                    }
                }
            }
        };
        // In rounds small enough for one socket's receive buffer.
        for _ in 0..sent / 50 {
            for _ in 0..50 {
                client.send_to(&hot, to).unwrap();
                client.send_to(&cold, to).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
            drain(&mut hot_per_socket, &mut cold_per_socket);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while hot_per_socket.iter().sum::<usize>() + cold_per_socket.iter().sum::<usize>()
            < 2 * sent
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
            drain(&mut hot_per_socket, &mut cold_per_socket);
        }
        assert!(
            hot_per_socket.iter().all(|&n| n > 50),
            "the spread name: {hot_per_socket:?}"
        );
        let owner = owner(&cold, basis, 4) as usize;
        assert_eq!(cold_per_socket[owner], sent, "{cold_per_socket:?}");
    }

    #[test]
    fn the_program_fits_and_every_jump_lands_inside() {
        let program = program(1, 4, &[1, 2, 3]);
        assert!(program.len() <= 4096);
        for (at, insn) in program.iter().enumerate() {
            let class = u32::from(insn.code) & 0x07;
            if class == libc::BPF_JMP {
                let ja = u32::from(insn.code) & 0xf0 == libc::BPF_JA;
                let targets = if ja {
                    vec![insn.k as usize]
                } else {
                    vec![usize::from(insn.jt), usize::from(insn.jf)]
                };
                for skip in targets {
                    assert!(
                        at + 1 + skip < program.len(),
                        "jump at {at} leaves the program"
                    );
                }
            }
        }
    }
}
