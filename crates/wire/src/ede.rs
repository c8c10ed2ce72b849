//! The Extended DNS Error registry (RFC 8914 section 4 and the IANA
//! "Extended DNS Error Codes" registry): every INFO-CODE heimdall may send
//! or read, defined once for all crates. The EDNS option code itself is
//! [`crate::edns::EXTENDED_ERROR`].

/// 0: none of the others fits; the EXTRA-TEXT says what.
pub const OTHER: u16 = 0;
/// 1: a DNSKEY uses an algorithm the resolver does not support.
pub const UNSUPPORTED_DNSKEY_ALGORITHM: u16 = 1;
/// 2: a DS uses a digest type the resolver does not support.
pub const UNSUPPORTED_DS_DIGEST_TYPE: u16 = 2;
/// 3: the answer is stale (RFC 8767).
pub const STALE_ANSWER: u16 = 3;
/// 4: the answer was forged by policy.
pub const FORGED_ANSWER: u16 = 4;
/// 5: DNSSEC validation ended Indeterminate.
pub const DNSSEC_INDETERMINATE: u16 = 5;
/// 6: DNSSEC validation ended Bogus.
pub const DNSSEC_BOGUS: u16 = 6;
/// 7: the covering signatures have expired.
pub const SIGNATURE_EXPIRED: u16 = 7;
/// 8: the covering signatures are not yet valid.
pub const SIGNATURE_NOT_YET_VALID: u16 = 8;
/// 9: a DNSKEY the chain of trust needs is missing.
pub const DNSKEY_MISSING: u16 = 9;
/// 10: RRSIGs the validation needs are missing.
pub const RRSIGS_MISSING: u16 = 10;
/// 11: no DNSKEY with the Zone Key bit set.
pub const NO_ZONE_KEY_BIT_SET: u16 = 11;
/// 12: the NSEC or NSEC3 records the denial needs are missing.
pub const NSEC_MISSING: u16 = 12;
/// 13: the resolver returns a cached SERVFAIL.
pub const CACHED_ERROR: u16 = 13;
/// 14: the server is not ready to answer.
pub const NOT_READY: u16 = 14;
/// 15: the name is blocked by the operator's policy.
pub const BLOCKED: u16 = 15;
/// 16: the name is censored by an outside authority.
pub const CENSORED: u16 = 16;
/// 17: the name is filtered at the client's request.
pub const FILTERED: u16 = 17;
/// 18: the client is not allowed to ask (ACL).
pub const PROHIBITED: u16 = 18;
/// 19: a stale NXDOMAIN answer (RFC 8767).
pub const STALE_NXDOMAIN_ANSWER: u16 = 19;
/// 20: an authoritative server that is not authoritative for the name.
pub const NOT_AUTHORITATIVE: u16 = 20;
/// 21: the request is not supported (an opcode, a meta type).
pub const NOT_SUPPORTED: u16 = 21;
/// 22: no upstream or authority could be reached.
pub const NO_REACHABLE_AUTHORITY: u16 = 22;
/// 23: an unrecoverable network error talking to another server.
pub const NETWORK_ERROR: u16 = 23;
/// 24: the authoritative server's zone data is invalid.
pub const INVALID_DATA: u16 = 24;
/// 25: an RRSIG that was signed before the DNSKEY existed.
pub const SIGNATURE_EXPIRED_BEFORE_VALID: u16 = 25;
/// 26: too early (RFC 8470 0-RTT).
pub const TOO_EARLY: u16 = 26;
/// 27: an NSEC3 iteration count above the resolver's limit (RFC 9276).
pub const UNSUPPORTED_NSEC3_ITERATIONS: u16 = 27;
/// 28: the resolver cannot apply the policy it was asked for.
pub const UNABLE_TO_CONFORM_TO_POLICY: u16 = 28;
/// 29: the answer was synthesized (for example from aggressive NSEC use).
pub const SYNTHESIZED: u16 = 29;
