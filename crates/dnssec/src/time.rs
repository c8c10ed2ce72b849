//! RRSIG validity times: 32-bit serial numbers (RFC 1982, as RFC 4034
//! section 3.1.5 requires), compared with the caller's clock and a
//! configurable skew. The clock is a parameter: seconds since the epoch.

use crate::outcome::Bogus;

/// `a < b` in RFC 1982 serial number arithmetic on 32 bits.
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && (b.wrapping_sub(a) as i32) > 0
}

/// Whether a signature valid from `inception` to `expiration` may be used
/// at `now` (seconds since the epoch), allowing `skew` seconds of clock
/// difference at either end. Ok with the seconds left until expiration
/// (0 when inside the skew past it).
pub fn signature_window(
    inception: u32,
    expiration: u32,
    now: u64,
    skew: u32,
) -> Result<u32, Bogus> {
    // Serial time is the epoch time modulo 2^32.
    let now = now as u32;
    if serial_lt(expiration, inception) {
        return Err(Bogus::SignatureExpiredBeforeValid);
    }
    if serial_lt(expiration.wrapping_add(skew), now) {
        return Err(Bogus::SignatureExpired);
    }
    if serial_lt(now.wrapping_add(skew), inception) {
        return Err(Bogus::SignatureNotYetValid);
    }
    Ok(if serial_lt(now, expiration) {
        expiration.wrapping_sub(now)
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_comparison_wraps() {
        assert!(serial_lt(1, 2));
        assert!(!serial_lt(2, 1));
        assert!(!serial_lt(5, 5));
        assert!(serial_lt(u32::MAX, 0));
        assert!(serial_lt(0xffff_fff0, 0x10));
        assert!(!serial_lt(0x10, 0xffff_fff0));
    }

    #[test]
    fn the_window_and_its_skew() {
        let (inception, expiration) = (1_000_000, 2_000_000);
        assert_eq!(
            signature_window(inception, expiration, 1_500_000, 0),
            Ok(500_000)
        );
        assert_eq!(
            signature_window(inception, expiration, 2_000_001, 0),
            Err(Bogus::SignatureExpired)
        );
        assert_eq!(
            signature_window(inception, expiration, 2_000_001, 10),
            Ok(0)
        );
        assert_eq!(
            signature_window(inception, expiration, 999_999, 0),
            Err(Bogus::SignatureNotYetValid)
        );
        assert!(signature_window(inception, expiration, 999_990, 10).is_ok());
        assert_eq!(
            signature_window(expiration, inception, 1_500_000, 0),
            Err(Bogus::SignatureExpiredBeforeValid)
        );
    }

    #[test]
    fn times_after_2106_compare_as_serials() {
        // A window that spans the 32-bit wrap: valid just after it.
        let inception = u32::MAX - 100;
        let expiration = 100u32;
        let now = (1u64 << 32) + 50;
        assert_eq!(signature_window(inception, expiration, now, 0), Ok(50));
        assert_eq!(
            signature_window(inception, expiration, (1u64 << 32) + 200, 0),
            Err(Bogus::SignatureExpired)
        );
    }
}
