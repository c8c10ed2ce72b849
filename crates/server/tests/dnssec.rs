//! DNSSEC validation end to end: a chain of zones signed on the spot with
//! BIND's dnssec-keygen / dnssec-signzone (a root `.`, `test.`,
//! `secure.test.` with NSEC, `nsec3.test.` with NSEC3, the unsigned
//! `insecure.test.` behind a delegation without DS, and broken zones:
//! `bogus.test.` with a tampered record, `expired.test.` signed in the
//! past, `notyet.test.` signed for the future, `nosig.test.` with an RRSIG
//! removed, `badds.test.` whose DS matches no key, `wrongkey.test.` whose
//! data is signed by a ZSK it does not publish, `nodnskey.test.` with a DS
//! at the parent but no DNSKEY RRset, `badnsec.test.` whose NXDOMAIN
//! comes with a validly signed NSEC that does not cover the name), served
//! by NSD on 127.0.0.1, with heimdall forwarding to it and the test root
//! key as trust anchor. Checked in `validate` mode: AD on secure answers
//! (CNAME, wildcard, NXDOMAIN, NODATA, NSEC3) for clients that ask, none
//! on insecure ones, SERVFAIL with EDE 6, 7, 8, 10, 9 and 12 for the
//! broken zones (also from the cache), the CD bypass, RRSIGs only for DO
//! clients, and the counters; in `permissive` mode bogus data answered
//! without AD but with its EDE, and a negative trust anchor. Replies are cross-checked
//! with hickory-proto and with `dig +dnssec`, and every verdict and EDE
//! with Unbound's (a few EDEs differ on purpose, listed in the test and in
//! docs/SECURITY.md).
//!
//! Each peer is skipped when missing and fails the test under CI=true.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use heimdall_testkit::peers;
use heimdall_wire::{Rcode, RecordType, Section, ede};

use common::http::{get_ok, metrics};
use common::{Client, LOOPBACK, Reply, Setup, TestServer, start_server, total, wait_until};

/// Every tool the test needs, or `None` (skip) after saying which is
/// missing; under CI a missing one fails.
struct Tools {
    keygen: PathBuf,
    signzone: PathBuf,
    dsfromkey: PathBuf,
    nsd: PathBuf,
    dig: PathBuf,
}

fn tools() -> Option<Tools> {
    Some(Tools {
        keygen: peers::find("dnssec-keygen", "bind9-utils")?,
        signzone: peers::find("dnssec-signzone", "bind9-utils")?,
        dsfromkey: peers::find("dnssec-dsfromkey", "bind9-utils")?,
        nsd: peers::find("nsd", "nsd")?,
        dig: peers::find("dig", "bind9-dnsutils")?,
    })
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run a tool");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The zone's SOA and NS records.
fn apex(origin: &str) -> String {
    format!(
        "$TTL 3600\n{origin} IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n\
         {origin} IN NS ns.test.\n"
    )
}

/// How a zone is signed.
#[derive(Default)]
struct Signing {
    /// Extra dnssec-signzone arguments (validity window, NSEC3).
    args: Vec<&'static str>,
    /// Rewrite the signed file (tampering).
    tamper: Option<fn(&str) -> String>,
}

/// The signed text with the A record of www.bogus.test. changed.
fn tamper_rdata(text: &str) -> String {
    assert!(text.contains("192.0.2.3"));
    text.replace("192.0.2.3", "192.0.2.4")
}

/// The signed text without the RRSIG of www.nosig.test. A.
fn drop_rrsig(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !(line.starts_with("www.nosig.test.") && line.contains("RRSIG\tA ")))
        .collect();
    assert!(kept.len() < text.lines().count(), "no RRSIG dropped");
    kept.join("\n") + "\n"
}

/// A DS record whose digest no longer matches (last hex digit changed).
fn corrupt_ds(ds: &str) -> String {
    let trimmed = ds.trim_end();
    let (head, last) = trimmed.split_at(trimmed.len() - 1);
    let flipped = if last == "0" { "1" } else { "0" };
    format!("{head}{flipped}\n")
}

/// A zone's KSK and ZSK: the dnssec-keygen file stems in the signing
/// directory.
struct ZoneKeys {
    ksk: String,
    zsk: String,
}

/// A fresh ECDSA P-256 key for `origin` (a KSK when `ksk`).
fn keygen(tools: &Tools, dir: &Path, origin: &str, ksk: bool) -> String {
    let mut command = Command::new(&tools.keygen);
    command
        .current_dir(dir)
        .args(["-q", "-K", ".", "-a", "ECDSAP256SHA256", "-n", "ZONE"]);
    if ksk {
        command.args(["-f", "KSK"]);
    }
    run(command.arg(origin)).trim().to_owned()
}

fn zone_keys(tools: &Tools, dir: &Path, origin: &str) -> ZoneKeys {
    ZoneKeys {
        ksk: keygen(tools, dir, origin, true),
        zsk: keygen(tools, dir, origin, false),
    }
}

/// The key tag in a dnssec-keygen file stem (`Korigin+013+12345`).
fn tag_of(stem: &str) -> &str {
    stem.rsplit('+').next().unwrap()
}

/// Sign `body` (with the apex records) as `origin` into `dir/<file>.signed`
/// with a fresh KSK and ZSK (ECDSA P-256); returns the DS of the KSK.
fn sign(tools: &Tools, dir: &Path, origin: &str, file: &str, body: &str, how: &Signing) -> String {
    let keys = zone_keys(tools, dir, origin);
    sign_with(tools, dir, origin, file, body, &keys, how)
}

/// [`sign`] with the given `keys` (both published at the apex), so that
/// two versions of a zone can be signed by the same keys.
fn sign_with(
    tools: &Tools,
    dir: &Path,
    origin: &str,
    file: &str,
    body: &str,
    keys: &ZoneKeys,
    how: &Signing,
) -> String {
    let ZoneKeys { ksk, zsk } = keys;
    let zone = format!(
        "{}{body}$INCLUDE {ksk}.key\n$INCLUDE {zsk}.key\n",
        apex(origin)
    );
    std::fs::write(dir.join(file), zone).unwrap();
    let signed = format!("{file}.signed");
    let mut command = Command::new(&tools.signzone);
    command
        .current_dir(dir)
        .args([
            "-q", "-P", "-K", ".", "-o", origin, "-O", "full", "-f", &signed,
        ])
        .args(&how.args)
        .args([file, &format!("{ksk}.key"), &format!("{zsk}.key")]);
    run(&mut command);
    if let Some(edit) = how.tamper {
        let text = std::fs::read_to_string(dir.join(&signed)).unwrap();
        std::fs::write(dir.join(&signed), edit(&text)).unwrap();
    }
    run(Command::new(&tools.dsfromkey)
        .current_dir(dir)
        .args(["-2", &format!("{ksk}.key")]))
}

/// Owner, type and (for an RRSIG) covered type of a record line of a
/// signed file (`-O full`: owner, TTL, class, type, RDATA); `None` for
/// comments and blank lines.
fn line_type(line: &str) -> Option<(&str, &str, Option<&str>)> {
    let mut fields = line.split_whitespace();
    let owner = fields.next().filter(|owner| !owner.starts_with(';'))?;
    let rtype = fields.nth(2)?;
    let covered = (rtype == "RRSIG").then(|| fields.next()).flatten();
    Some((owner, rtype, covered))
}

/// Whether `line` is a record of type `rtype` or an RRSIG over one.
fn is_of(line: &str, rtype: &str) -> bool {
    line_type(line).is_some_and(|(_, t, covered)| t == rtype || covered == Some(rtype))
}

/// The lines of signed file `from` that `pick` selects in place of those
/// of `into` it selects; the result replaces `into`.
fn splice(dir: &Path, into: &str, from: &str, pick: impl Fn(&str) -> bool) {
    let ours = std::fs::read_to_string(dir.join(into)).unwrap();
    let theirs = std::fs::read_to_string(dir.join(from)).unwrap();
    let kept: Vec<&str> = ours.lines().filter(|line| !pick(line)).collect();
    let taken: Vec<&str> = theirs.lines().filter(|line| pick(line)).collect();
    assert!(!taken.is_empty(), "nothing to take from {from}");
    assert!(
        kept.len() < ours.lines().count(),
        "nothing replaced in {into}"
    );
    let text = kept
        .iter()
        .chain(&taken)
        .fold(String::new(), |mut text, line| {
            text.push_str(line);
            text.push('\n');
            text
        });
    std::fs::write(dir.join(into), text).unwrap();
}

/// The signed text without its DNSKEY records. Their RRSIGs stay: NSD
/// serves a zone as signed (RRSIGs to DO queries) only while an RRSIG
/// over DNSKEY sits at its apex, and the point is a signed zone whose
/// keys cannot be had, not an unsigned one.
fn drop_dnskeys(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| line_type(line).is_none_or(|(_, rtype, _)| rtype != "DNSKEY"))
        .collect();
    assert!(kept.len() + 2 <= text.lines().count(), "no DNSKEY dropped");
    kept.join("\n") + "\n"
}

/// `wrongkey.test.`: the published DNSKEY RRset (KSK and ZSK, signed by
/// the KSK, which the parent's DS names) served with the zone's data as
/// signed by a second ZSK that is not published: every data RRSIG names a
/// key the zone does not have. Returns the DS.
fn sign_with_unpublished_key(tools: &Tools, dir: &Path, body: &str) -> String {
    let origin = "wrongkey.test.";
    let keys = zone_keys(tools, dir, origin);
    let ds = sign_with(
        tools,
        dir,
        origin,
        "wrongkey.zone",
        body,
        &keys,
        &Signing::default(),
    );
    // A key tag equal to the published ZSK's would make this a bad
    // signature instead of a missing key.
    let other = loop {
        let zsk = keygen(tools, dir, origin, false);
        if tag_of(&zsk) != tag_of(&keys.zsk) {
            break zsk;
        }
    };
    let unpublished = ZoneKeys {
        ksk: keys.ksk.clone(),
        zsk: other,
    };
    sign_with(
        tools,
        dir,
        origin,
        "wrongkey-other.zone",
        body,
        &unpublished,
        &Signing::default(),
    );
    splice(
        dir,
        "wrongkey.zone.signed",
        "wrongkey-other.zone.signed",
        |line| line_type(line).is_some() && !is_of(line, "DNSKEY"),
    );
    ds
}

/// `badnsec.test.`: names `a` and `m`, but the NSEC of `a` (with its
/// RRSIG) taken from the same zone signed by the same keys with a name
/// `c` added: a validly signed NSEC `a -> c` that does not cover `d`, so
/// the NXDOMAIN for `d.badnsec.test.` has no covering NSEC. Returns the
/// DS.
fn sign_with_foreign_nsec(tools: &Tools, dir: &Path) -> String {
    let origin = "badnsec.test.";
    let keys = zone_keys(tools, dir, origin);
    let plain = Signing::default();
    let ds = sign_with(
        tools,
        dir,
        origin,
        "badnsec.zone",
        "a.badnsec.test. IN A 192.0.2.13\nm.badnsec.test. IN A 192.0.2.14\n",
        &keys,
        &plain,
    );
    sign_with(
        tools,
        dir,
        origin,
        "badnsec-other.zone",
        "a.badnsec.test. IN A 192.0.2.13\nc.badnsec.test. IN A 192.0.2.15\n\
         m.badnsec.test. IN A 192.0.2.14\n",
        &keys,
        &plain,
    );
    splice(
        dir,
        "badnsec.zone.signed",
        "badnsec-other.zone.signed",
        |line| {
            line_type(line).is_some_and(|(owner, _, _)| owner == "a.badnsec.test.")
                && is_of(line, "NSEC")
        },
    );
    let served = std::fs::read_to_string(dir.join("badnsec.zone.signed")).unwrap();
    assert!(
        served
            .lines()
            .any(|line| line.contains("NSEC") && line.contains("c.badnsec.test.")),
        "{served}"
    );
    ds
}

/// The signed chain in `dir`; returns the trust-anchor file (the DS of
/// the test root's KSK) and the zones NSD serves (origin, file).
fn build_chain(tools: &Tools, dir: &Path) -> (PathBuf, Vec<(&'static str, String)>) {
    let plain = Signing::default();
    let secure = sign(
        tools,
        dir,
        "secure.test.",
        "secure.zone",
        "www.secure.test. IN A 192.0.2.1\n\
         alias.secure.test. IN CNAME www.secure.test.\n\
         dname.secure.test. IN DNAME secure.test.\n\
         *.wild.secure.test. IN A 192.0.2.9\n\
         zero.secure.test. 0 IN A 192.0.2.18\n",
        &plain,
    );
    let nsec3 = sign(
        tools,
        dir,
        "nsec3.test.",
        "nsec3.zone",
        "www.nsec3.test. IN A 192.0.2.6\n",
        &Signing {
            args: vec!["-3", "-", "-H", "0"],
            tamper: None,
        },
    );
    let bogus = sign(
        tools,
        dir,
        "bogus.test.",
        "bogus.zone",
        "www.bogus.test. IN A 192.0.2.3\n",
        &Signing {
            args: Vec::new(),
            tamper: Some(tamper_rdata),
        },
    );
    let expired = sign(
        tools,
        dir,
        "expired.test.",
        "expired.zone",
        "www.expired.test. IN A 192.0.2.5\n",
        &Signing {
            args: vec!["-s", "20200101000000", "-e", "20200201000000"],
            tamper: None,
        },
    );
    let notyet = sign(
        tools,
        dir,
        "notyet.test.",
        "notyet.zone",
        "www.notyet.test. IN A 192.0.2.7\n",
        &Signing {
            args: vec!["-s", "+864000", "-e", "+1728000"],
            tamper: None,
        },
    );
    let nosig = sign(
        tools,
        dir,
        "nosig.test.",
        "nosig.zone",
        "www.nosig.test. IN A 192.0.2.8\n",
        &Signing {
            args: Vec::new(),
            tamper: Some(drop_rrsig),
        },
    );
    let badds = corrupt_ds(&sign(
        tools,
        dir,
        "badds.test.",
        "badds.zone",
        "www.badds.test. IN A 192.0.2.10\n",
        &plain,
    ));
    let wrongkey = sign_with_unpublished_key(tools, dir, "www.wrongkey.test. IN A 192.0.2.16\n");
    let nodnskey = sign(
        tools,
        dir,
        "nodnskey.test.",
        "nodnskey.zone",
        "www.nodnskey.test. IN A 192.0.2.17\n",
        &Signing {
            args: Vec::new(),
            tamper: Some(drop_dnskeys),
        },
    );
    let badnsec = sign_with_foreign_nsec(tools, dir);
    // NSEC3 with opt-out: the unsigned delegation below it has no NSEC3
    // of its own, so its DS absence is only covered by an opt-out span.
    let optout = sign(
        tools,
        dir,
        "optout.test.",
        "optout.zone",
        "www.optout.test. IN A 192.0.2.11\n\
         unsigned.optout.test. IN NS ns.test.\n",
        &Signing {
            args: vec!["-3", "-", "-H", "0", "-A"],
            tamper: None,
        },
    );
    std::fs::write(
        dir.join("unsigned.zone"),
        format!(
            "{}www.unsigned.optout.test. IN A 192.0.2.12\n",
            apex("unsigned.optout.test.")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("insecure.zone"),
        format!(
            "{}www.insecure.test. IN A 192.0.2.2\n",
            apex("insecure.test.")
        ),
    )
    .unwrap();
    let test = sign(
        tools,
        dir,
        "test.",
        "test.zone",
        &format!(
            "ns.test. IN A 127.0.0.1\n\
             secure.test. IN NS ns.test.\n{secure}\
             nsec3.test. IN NS ns.test.\n{nsec3}\
             bogus.test. IN NS ns.test.\n{bogus}\
             expired.test. IN NS ns.test.\n{expired}\
             notyet.test. IN NS ns.test.\n{notyet}\
             nosig.test. IN NS ns.test.\n{nosig}\
             badds.test. IN NS ns.test.\n{badds}\
             wrongkey.test. IN NS ns.test.\n{wrongkey}\
             nodnskey.test. IN NS ns.test.\n{nodnskey}\
             badnsec.test. IN NS ns.test.\n{badnsec}\
             optout.test. IN NS ns.test.\n{optout}\
             insecure.test. IN NS ns.test.\n"
        ),
        &plain,
    );
    let root = sign(
        tools,
        dir,
        ".",
        "root.zone",
        &format!("test. IN NS ns.test.\nns.test. IN A 127.0.0.1\n{test}"),
        &plain,
    );
    let anchor = dir.join("anchor.ds");
    std::fs::write(&anchor, root).unwrap();
    let zones = vec![
        (".", "root.zone.signed".to_owned()),
        ("test.", "test.zone.signed".to_owned()),
        ("secure.test.", "secure.zone.signed".to_owned()),
        ("nsec3.test.", "nsec3.zone.signed".to_owned()),
        ("bogus.test.", "bogus.zone.signed".to_owned()),
        ("expired.test.", "expired.zone.signed".to_owned()),
        ("notyet.test.", "notyet.zone.signed".to_owned()),
        ("nosig.test.", "nosig.zone.signed".to_owned()),
        ("badds.test.", "badds.zone.signed".to_owned()),
        ("wrongkey.test.", "wrongkey.zone.signed".to_owned()),
        ("nodnskey.test.", "nodnskey.zone.signed".to_owned()),
        ("badnsec.test.", "badnsec.zone.signed".to_owned()),
        ("insecure.test.", "insecure.zone".to_owned()),
        ("optout.test.", "optout.zone.signed".to_owned()),
        ("unsigned.optout.test.", "unsigned.zone".to_owned()),
    ];
    (anchor, zones)
}

/// NSD serving the zones on 127.0.0.1; killed when dropped.
struct Nsd {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 for UDP (NSD opens TCP on it too).
fn free_port() -> u16 {
    let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    socket.local_addr().unwrap().port()
}

fn start_nsd(tools: &Tools, dir: &Path, zones: &[(&str, String)]) -> Nsd {
    let port = free_port();
    let d = dir.display();
    let mut conf = format!(
        "server:\n  ip-address: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  server-count: 1\n  \
         username: \"\"\n  chroot: \"\"\n  zonesdir: \"{d}\"\n  database: \"\"\n  \
         zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  \
         pidfile: \"{d}/nsd.pid\"\n  logfile: \"{d}/nsd.log\"\n  verbosity: 1\n\
         remote-control:\n  control-enable: no\n"
    );
    for (origin, file) in zones {
        conf.push_str(&format!(
            "zone:\n  name: \"{origin}\"\n  zonefile: \"{file}\"\n"
        ));
    }
    std::fs::write(dir.join("nsd.conf"), conf).unwrap();
    let child = Command::new(&tools.nsd)
        .args(["-d", "-c"])
        .arg(dir.join("nsd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nsd");
    let nsd = Nsd {
        child,
        addr: SocketAddr::from((LOOPBACK, port)),
    };
    let probe = common::query(1, "test.", RecordType::SOA, Some(1232));
    let up = wait_until(Duration::from_secs(10), || {
        let client = Client::new(nsd.addr);
        client.send(&probe);
        client.recv_within(Duration::from_millis(200)).is_some()
    });
    let log = std::fs::read_to_string(dir.join("nsd.log")).unwrap_or_default();
    assert!(up, "nsd did not answer on {}:\n{log}", nsd.addr);
    nsd
}

/// heimdall validating, forwarding to `upstream`, anchored at `anchor`.
fn validating_server(upstream: SocketAddr, anchor: &Path) -> TestServer {
    dnssec_server(upstream, anchor, "validate", "[]")
}

/// heimdall in DNSSEC `mode` with `negative` anchors (a YAML list).
fn dnssec_server(upstream: SocketAddr, anchor: &Path, mode: &str, negative: &str) -> TestServer {
    dnssec_server_with(upstream, anchor, mode, negative, "")
}

/// [`dnssec_server`] with `extra` keys of `dnssec:` (each line indented).
fn dnssec_server_with(
    upstream: SocketAddr,
    anchor: &Path,
    mode: &str,
    negative: &str,
    extra: &str,
) -> TestServer {
    let yaml = format!(
        "{}dnssec:\n  mode: {mode}\n  trust_anchors: [\"{}\"]\n  \
         negative_trust_anchors: {negative}\n{extra}",
        Setup {
            dnssec_mode: None,
            ..Setup::new(&[upstream])
        }
        .yaml(),
        anchor.display()
    );
    let mut config = heimdall_config::Config::from_yaml_str(&yaml, "test.yaml")
        .unwrap_or_else(|err| panic!("{err}\n{yaml}"));
    common::listen_on_any_port(&mut config);
    start_server(&config)
}

/// A query with EDNS and DO as given, AD and CD as given.
fn ask(client: &Client, name: &str, qtype: RecordType, flags: (bool, bool, bool)) -> Reply {
    let (dnssec_ok, ad, cd) = flags;
    let id = u16::try_from(name.len() * 31 + usize::from(qtype.0)).unwrap_or(7);
    let mut query = heimdall_testkit::messages::query(name, qtype, id, Some((1232, dnssec_ok)));
    if ad {
        query[3] |= 0x20;
    }
    if cd {
        query[3] |= 0x10;
    }
    client.exchange(&query)
}

const DO: (bool, bool, bool) = (true, false, false);
const PLAIN: (bool, bool, bool) = (false, false, false);

fn has_type(reply: &Reply, section: Section, rtype: RecordType) -> bool {
    reply
        .message()
        .records(section)
        .any(|record| record.rtype() == rtype)
}

fn ad(reply: &Reply) -> bool {
    reply.message().flags().authentic_data()
}

fn dig(tools: &Tools, server: SocketAddr, args: &[&str]) -> String {
    assert_eq!(server.ip(), LOOPBACK);
    run(Command::new(&tools.dig)
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=3", "+tries=1"])
        .args(args))
}

/// An empty directory of this test binary's, unique to the process.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("heimdall-tests")
        .join(format!("dnssec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Unbound 1.17 as a validating forwarder to `upstream` with the same
/// anchor; killed when dropped.
struct Unbound {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_unbound(unbound: &Path, dir: &Path, upstream: SocketAddr, anchor: &Path) -> Unbound {
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  num-threads: 1\n  \
         so-reuseport: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  \
         pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  logfile: \"{d}/unbound.log\"\n  \
         verbosity: 1\n  do-not-query-localhost: no\n  module-config: \"validator iterator\"\n  \
         trust-anchor-file: \"{}\"\n  access-control: 127.0.0.0/8 allow\n  ede: yes\n  \
         local-zone: \"test.\" nodefault\n\
         remote-control:\n  control-enable: no\n\
         forward-zone:\n  name: \".\"\n  forward-addr: {}@{}\n",
        anchor.display(),
        upstream.ip(),
        upstream.port()
    );
    std::fs::write(dir.join("unbound.conf"), conf).unwrap();
    let child = Command::new(unbound)
        .args(["-d", "-c"])
        .arg(dir.join("unbound.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start unbound");
    let unbound = Unbound {
        child,
        addr: SocketAddr::from((LOOPBACK, port)),
    };
    let probe = common::query(1, "test.", RecordType::SOA, Some(1232));
    let up = wait_until(Duration::from_secs(10), || {
        let client = Client::new(unbound.addr);
        client.send(&probe);
        client.recv_within(Duration::from_millis(200)).is_some()
    });
    let log = std::fs::read_to_string(dir.join("unbound.log")).unwrap_or_default();
    assert!(up, "unbound did not answer on {}:\n{log}", unbound.addr);
    unbound
}

/// For every test query, heimdall's verdict (rcode and AD) is Unbound's,
/// both validating forwarders to the same NSD with the same anchor.
#[test]
fn heimdall_agrees_with_unbound_on_every_verdict() {
    let Some(tools) = tools() else {
        return;
    };
    let Some(unbound_path) = peers::find("unbound", "unbound") else {
        return;
    };
    let dir = scratch_dir("differential");
    let (anchor, zones) = build_chain(&tools, &dir);
    let nsd = start_nsd(&tools, &dir, &zones);
    let unbound = start_unbound(&unbound_path, &dir, nsd.addr, &anchor);
    let server = validating_server(nsd.addr, &anchor);
    let (ours, theirs) = (server.client(), Client::new(unbound.addr));
    let mut secure = 0;
    for (name, qtype) in [
        ("www.secure.test.", RecordType::A),
        ("alias.secure.test.", RecordType::A),
        ("www.dname.secure.test.", RecordType::A),
        ("foo.wild.secure.test.", RecordType::A),
        ("nothing.secure.test.", RecordType::A),
        ("www.secure.test.", RecordType::AAAA),
        ("zero.secure.test.", RecordType::A),
        ("www.nsec3.test.", RecordType::A),
        ("nothing.nsec3.test.", RecordType::A),
        ("www.insecure.test.", RecordType::A),
        ("nothing.insecure.test.", RecordType::A),
        ("www.optout.test.", RecordType::A),
        ("www.unsigned.optout.test.", RecordType::A),
        ("www.bogus.test.", RecordType::A),
        ("www.expired.test.", RecordType::A),
        ("www.notyet.test.", RecordType::A),
        ("www.nosig.test.", RecordType::A),
        ("www.badds.test.", RecordType::A),
        ("www.wrongkey.test.", RecordType::A),
        ("www.nodnskey.test.", RecordType::A),
        ("d.badnsec.test.", RecordType::A),
        ("a.badnsec.test.", RecordType::A),
    ] {
        let a = ask(&ours, name, qtype, DO);
        let b = ask(&theirs, name, qtype, DO);
        let verdict = |reply: &Reply| (reply.rcode(), ad(reply));
        assert_eq!(
            verdict(&a),
            verdict(&b),
            "{name} {qtype}: heimdall vs Unbound"
        );
        // The reasons agree too, but where heimdall is more precise
        // (docs/SECURITY.md lists these): Unbound 1.17 reports a
        // signature outside its window as DNSKEY Missing (no key left that
        // could verify it), and a denial whose signed NSEC records do not
        // cover the name as DNSSEC Bogus.
        let reasons = match name {
            "www.expired.test." => (vec![ede::SIGNATURE_EXPIRED], vec![ede::DNSKEY_MISSING]),
            "www.notyet.test." => (
                vec![ede::SIGNATURE_NOT_YET_VALID],
                vec![ede::DNSKEY_MISSING],
            ),
            "d.badnsec.test." => (vec![ede::NSEC_MISSING], vec![ede::DNSSEC_BOGUS]),
            _ => (b.ede_codes(), b.ede_codes()),
        };
        assert_eq!(
            (a.ede_codes(), b.ede_codes()),
            reasons,
            "{name} {qtype}: EDE of heimdall, of Unbound"
        );
        secure += usize::from(ad(&a));
    }
    assert!(secure >= 7, "the secure answers are secure for both");
    server.stop();
    drop(unbound);
    drop(nsd);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_signed_chain_validates_end_to_end() {
    let Some(tools) = tools() else {
        return;
    };
    let dir = scratch_dir("chain");
    let (anchor, zones) = build_chain(&tools, &dir);
    let nsd = start_nsd(&tools, &dir, &zones);
    let server = validating_server(nsd.addr, &anchor);
    let client = server.client();

    // Secure: AD for a DO client, with the RRSIG.
    let secure = ask(&client, "www.secure.test.", RecordType::A, DO);
    assert_eq!(secure.rcode(), Rcode::NOERROR);
    assert!(ad(&secure), "AD on a validated answer");
    assert!(has_type(&secure, Section::Answer, RecordType::RRSIG));
    // No DO and no AD: no AD bit and no RRSIG (a cache entry of its own).
    let plain = ask(&client, "www.secure.test.", RecordType::A, PLAIN);
    assert_eq!(plain.rcode(), Rcode::NOERROR);
    assert!(!ad(&plain), "AD only to clients that ask");
    assert!(!has_type(&plain, Section::Answer, RecordType::RRSIG));
    assert!(has_type(&plain, Section::Answer, RecordType::A));
    // AD without DO: AD, still no RRSIG (RFC 6840 section 5.7).
    let asks_ad = ask(
        &client,
        "www.secure.test.",
        RecordType::A,
        (false, true, false),
    );
    assert!(ad(&asks_ad));
    assert!(!has_type(&asks_ad, Section::Answer, RecordType::RRSIG));
    // The cached secure answer keeps its AD.
    assert!(ad(&ask(&client, "www.secure.test.", RecordType::A, DO)));
    // NSD puts the zone's NS RRset in the authority section; nothing
    // validated it, so a secure answer goes without it (and without any
    // additional record); an insecure one is passed on whole.
    let raw = common::ask_directly(
        nsd.addr,
        &heimdall_testkit::messages::query(
            "www.secure.test.",
            RecordType::A,
            9,
            Some((1232, true)),
        ),
    );
    assert!(
        has_type(&raw, Section::Authority, RecordType::NS),
        "NSD sends NS"
    );
    assert!(!has_type(&secure, Section::Authority, RecordType::NS));
    assert!(!has_type(&secure, Section::Authority, RecordType::RRSIG));
    assert_eq!(
        secure
            .message()
            .records(Section::Additional)
            .filter(|r| r.rtype() != RecordType::OPT)
            .count(),
        0
    );

    // A record with TTL 0 is never cached, yet answered as a secure
    // answer from the cache would be: AD, the RRSIG only for DO.
    for _ in 0..2 {
        let zero = ask(&client, "zero.secure.test.", RecordType::A, DO);
        assert_eq!(zero.rcode(), Rcode::NOERROR);
        assert!(ad(&zero), "AD on a secure answer with TTL 0");
        assert!(has_type(&zero, Section::Answer, RecordType::RRSIG));
        assert!(
            zero.message()
                .records(Section::Answer)
                .all(|record| record.ttl() == 0)
        );
        assert!(!has_type(&zero, Section::Authority, RecordType::NS));
    }
    let zero = ask(&client, "zero.secure.test.", RecordType::A, PLAIN);
    assert!(!ad(&zero));
    assert!(!has_type(&zero, Section::Answer, RecordType::RRSIG));
    // A CNAME chain, validated link by link; a wildcard; NXDOMAIN and
    // NODATA with NSEC; NXDOMAIN with NSEC3.
    let alias = ask(&client, "alias.secure.test.", RecordType::A, DO);
    assert!(ad(&alias) && has_type(&alias, Section::Answer, RecordType::CNAME));
    let dname = ask(&client, "www.dname.secure.test.", RecordType::A, DO);
    assert_eq!(dname.rcode(), Rcode::NOERROR);
    assert!(has_type(&dname, Section::Answer, RecordType::DNAME));
    assert!(ad(&dname), "a DNAME and the CNAME it synthesises");
    let wild = ask(&client, "foo.wild.secure.test.", RecordType::A, DO);
    assert_eq!(wild.rcode(), Rcode::NOERROR);
    assert!(ad(&wild), "wildcard answer with its NSEC proof");
    let nx = ask(&client, "nothing.secure.test.", RecordType::A, DO);
    assert_eq!(nx.rcode(), Rcode::NXDOMAIN);
    assert!(ad(&nx), "NXDOMAIN proved with NSEC");
    assert!(has_type(&nx, Section::Authority, RecordType::NSEC));
    let nodata = ask(&client, "www.secure.test.", RecordType::AAAA, DO);
    assert_eq!(nodata.rcode(), Rcode::NOERROR);
    assert!(ad(&nodata), "NODATA proved with NSEC");
    let nx3 = ask(&client, "nothing.nsec3.test.", RecordType::A, DO);
    assert_eq!(nx3.rcode(), Rcode::NXDOMAIN);
    assert!(ad(&nx3), "NXDOMAIN proved with NSEC3");
    let nx_plain = ask(&client, "other.secure.test.", RecordType::A, PLAIN);
    assert_eq!(nx_plain.rcode(), Rcode::NXDOMAIN);
    assert!(!has_type(&nx_plain, Section::Authority, RecordType::NSEC));

    // Insecure: the answer without AD.
    let insecure = ask(&client, "www.insecure.test.", RecordType::A, DO);
    assert_eq!(insecure.rcode(), Rcode::NOERROR);
    assert!(has_type(&insecure, Section::Answer, RecordType::A));
    assert!(!ad(&insecure), "no AD below an insecure delegation");
    assert!(has_type(&insecure, Section::Authority, RecordType::NS));
    let opted_out = ask(&client, "www.unsigned.optout.test.", RecordType::A, DO);
    assert_eq!(opted_out.rcode(), Rcode::NOERROR);
    assert!(has_type(&opted_out, Section::Answer, RecordType::A));
    assert!(!ad(&opted_out), "no AD below an NSEC3 opt-out delegation");
    assert!(ad(&ask(&client, "www.optout.test.", RecordType::A, DO)));

    // Bogus: SERVFAIL with the reason, and again from the cache.
    for _ in 0..2 {
        let bogus = ask(&client, "www.bogus.test.", RecordType::A, DO);
        assert_eq!(bogus.rcode(), Rcode::SERVFAIL);
        assert_eq!(bogus.ede_codes(), [ede::DNSSEC_BOGUS]);
    }
    for (name, code) in [
        ("www.expired.test.", ede::SIGNATURE_EXPIRED),
        ("www.notyet.test.", ede::SIGNATURE_NOT_YET_VALID),
        ("www.nosig.test.", ede::RRSIGS_MISSING),
        ("www.badds.test.", ede::DNSKEY_MISSING),
        // Signed by a ZSK the zone does not publish.
        ("www.wrongkey.test.", ede::DNSKEY_MISSING),
        // A DS at the parent, no DNSKEY RRset in the zone.
        ("www.nodnskey.test.", ede::DNSKEY_MISSING),
        // A validly signed NSEC that does not cover the name.
        ("d.badnsec.test.", ede::NSEC_MISSING),
    ] {
        let reply = ask(&client, name, RecordType::A, DO);
        assert_eq!(reply.rcode(), Rcode::SERVFAIL, "{name}");
        assert_eq!(reply.ede_codes(), [code], "{name}");
    }
    // CD: the data as it is, without validation and without AD.
    let cd = ask(
        &client,
        "www.bogus.test.",
        RecordType::A,
        (true, false, true),
    );
    assert_eq!(cd.rcode(), Rcode::NOERROR);
    assert!(has_type(&cd, Section::Answer, RecordType::A));
    assert!(!ad(&cd));

    // dig sees the same.
    let out = dig(&tools, server.addr, &["+dnssec", "www.secure.test.", "A"]);
    assert!(out.contains(" ad;") || out.contains(" ad "), "{out}");
    assert!(out.contains("RRSIG"), "{out}");
    let out = dig(&tools, server.addr, &["+dnssec", "www.expired.test.", "A"]);
    assert!(out.contains("status: SERVFAIL"), "{out}");
    assert!(out.contains("EDE: 7"), "{out}");

    let reports = server.stop();
    let count =
        |f: fn(&heimdall_resolver::ResolverStats) -> u64| total(&reports, |r| f(&r.resolver));
    assert!(count(|s| s.dnssec_secure) >= 7, "{:?}", reports[0].resolver);
    assert!(count(|s| s.dnssec_insecure) >= 2);
    assert_eq!(
        count(|s| s.dnssec_bogus_signature),
        1,
        "the second was a hit"
    );
    assert_eq!(count(|s| s.dnssec_bogus_expired), 1);
    assert_eq!(count(|s| s.dnssec_bogus_denial), 1, "badnsec");
    assert_eq!(
        count(|s| s.dnssec_bogus_dnskey_missing),
        3,
        "badds, wrongkey, nodnskey"
    );
    assert!(count(|s| s.dnssec_subqueries) >= 4);

    // Permissive: bogus data answered, without AD but with its reason; a
    // negative trust anchor: answered without validation.
    let permissive = dnssec_server(nsd.addr, &anchor, "permissive", "[expired.test]");
    let client = permissive.client();
    let bogus = ask(&client, "www.bogus.test.", RecordType::A, DO);
    assert_eq!(bogus.rcode(), Rcode::NOERROR);
    assert!(!ad(&bogus) && has_type(&bogus, Section::Answer, RecordType::A));
    assert_eq!(bogus.ede_codes(), [ede::DNSSEC_BOGUS]);
    let untrusted = ask(&client, "www.expired.test.", RecordType::A, DO);
    assert_eq!(untrusted.rcode(), Rcode::NOERROR);
    assert!(!ad(&untrusted));
    assert!(untrusted.ede_codes().is_empty());
    assert!(ad(&ask(&client, "www.secure.test.", RecordType::A, DO)));
    let reports = permissive.stop();
    assert_eq!(total(&reports, |r| r.resolver.dnssec_bogus_signature), 1);
    drop(nsd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A counter of `/metrics`, summed over the cores.
fn metric(server: &TestServer, name: &str) -> f64 {
    let text = get_ok(server.control_addr(), "/metrics");
    metrics(&text)
        .family(name)
        .map_or(0.0, |family| family.samples.iter().map(|s| s.value).sum())
}

/// `dnssec.aggressive_nsec` (RFC 8198): after one validated NXDOMAIN in
/// the NSEC-signed secure.test. (and in the NSEC3-signed nsec3.test.),
/// other names its NSEC (NSEC3) records cover are answered NXDOMAIN with
/// AD without an upstream query, and counted.
#[test]
fn aggressive_nsec_answers_random_names_without_asking_upstream() {
    let Some(tools) = tools() else {
        return;
    };
    let dir = scratch_dir("aggressive");
    let (anchor, zones) = build_chain(&tools, &dir);
    let nsd = start_nsd(&tools, &dir, &zones);
    let server = dnssec_server_with(
        nsd.addr,
        &anchor,
        "validate",
        "[]",
        "  aggressive_nsec: true\n",
    );
    let client = server.client();
    // secure.test.'s NSEC chain: apex, alias, dname, *.wild, www, zero. A name
    // after "dname" and before "wild" is covered by dname's NSEC; the
    // wildcard *.secure.test. by the apex's.
    let first = ask(&client, "nothing.secure.test.", RecordType::A, DO);
    assert_eq!(first.rcode(), Rcode::NXDOMAIN);
    assert!(ad(&first));
    let upstream = metric(&server, "heimdall_upstream_queries_total");
    assert!(upstream >= 1.0);
    let seed = std::process::id();
    for i in 0..20u32 {
        let name = format!(
            "r{:08x}.secure.test.",
            seed.wrapping_mul(2_654_435_761).wrapping_add(i)
        );
        let reply = ask(&client, &name, RecordType::A, DO);
        assert_eq!(reply.rcode(), Rcode::NXDOMAIN, "{name}");
        assert!(ad(&reply), "{name}");
        assert!(
            has_type(&reply, Section::Authority, RecordType::NSEC),
            "{name}"
        );
        // No DO: the denial without its NSEC records.
        let plain = ask(&client, &format!("p{name}"), RecordType::AAAA, PLAIN);
        assert_eq!(plain.rcode(), Rcode::NXDOMAIN);
        assert!(!has_type(&plain, Section::Authority, RecordType::NSEC));
    }
    assert_eq!(
        metric(&server, "heimdall_upstream_queries_total"),
        upstream,
        "not one more upstream query"
    );
    assert_eq!(
        metric(&server, "heimdall_dnssec_aggressive_answers_total"),
        40.0
    );
    // NSEC3 (nsec3.test.: the apex and www, so two hashed spans): after
    // one NXDOMAIN every other name's hashes are covered.
    let first = ask(&client, "nothing.nsec3.test.", RecordType::A, DO);
    assert_eq!(first.rcode(), Rcode::NXDOMAIN);
    assert!(ad(&first));
    let upstream = metric(&server, "heimdall_upstream_queries_total");
    for i in 0..10u32 {
        let name = format!(
            "h{:08x}.nsec3.test.",
            seed.wrapping_mul(40_503).wrapping_add(i)
        );
        let reply = ask(&client, &name, RecordType::A, DO);
        assert_eq!(reply.rcode(), Rcode::NXDOMAIN, "{name}");
        assert!(ad(&reply), "{name}");
        assert!(
            has_type(&reply, Section::Authority, RecordType::NSEC3),
            "{name}"
        );
    }
    assert_eq!(
        metric(&server, "heimdall_upstream_queries_total"),
        upstream,
        "NSEC3: not one more upstream query"
    );
    assert_eq!(
        metric(&server, "heimdall_dnssec_aggressive_answers_total"),
        50.0
    );
    // dig agrees: AD and the NSEC proof.
    let out = dig(
        &tools,
        server.addr,
        &["+dnssec", "zzz-dig.secure.test.", "A"],
    );
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(out.contains(" ad"), "{out}");
    assert!(out.contains("NSEC"), "{out}");
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.resolver.dnssec_aggressive), 50);
    drop(nsd);
    let _ = std::fs::remove_dir_all(&dir);
}
