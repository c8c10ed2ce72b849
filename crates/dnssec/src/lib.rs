//! DNSSEC validation for heimdall (RFC 4033-4035, 5155, 6840, 9276),
//! sans-IO: records, keys and the validation time go in, a verdict comes
//! out. The crate never reads a clock or a socket and never fetches
//! anything; the resolver finds the DNSKEY and DS records and calls in.
//!
//! - [`validate_rrset`]: one RRset against its RRSIGs and the zone's
//!   (already trusted) DNSKEYs; [`validate_rrset_memo`] the same with a
//!   memo of [`VerifiedSignatures`], so a signature seen again costs a
//!   hash, not a public-key operation.
//! - [`verify_dnskeys_with_ds`] / [`verify_dnskeys_with_anchors`]: a
//!   zone's DNSKEY RRset against the parent's DS set or a trust anchor.
//! - [`prove_nxdomain`], [`prove_nodata`], [`prove_wildcard_answer`]:
//!   authenticated denial of existence with NSEC or NSEC3.
//! - [`TrustAnchors`]: DS/DNSKEY presentation lines, with the root KSKs
//!   built in.
//! - [`Failure`]: why something is bogus or insecure, with the Extended
//!   DNS Error code for it ([`Failure::ede`]).
//!
//! Cryptography is `ring`'s (module `crypto`); nothing here is hand-made
//! cryptography.

mod anchor;
mod canonical;
mod crypto;
mod denial;
mod memo;
mod nsec;
mod nsec3;
mod outcome;
mod rr;
mod time;
mod validate;

pub use anchor::{AnchorError, ROOT_ANCHORS, TrustAnchor, TrustAnchors};
pub use canonical::{canonical_name_cmp, canonical_rdata};
pub use crypto::{algorithm_supported, digest_supported};
pub use denial::{prove_nodata, prove_nxdomain, prove_wildcard_answer};
pub use memo::VerifiedSignatures;
pub use nsec3::nsec3_hash;
pub use outcome::{Bogus, Failure, Insecure};
pub use rr::{Dnskey, Ds, Nsec, Nsec3, Rr, Rrsig, TypeBitmap};
pub use time::{serial_lt, signature_window};
pub use validate::{
    Config, DEFAULT_CLOCK_SKEW, DEFAULT_NSEC3_MAX_ITERATIONS, Secure, ds_matches_dnskey, key_tag,
    validate_rrset, validate_rrset_memo, verify_dnskeys_with_anchors, verify_dnskeys_with_ds,
};
