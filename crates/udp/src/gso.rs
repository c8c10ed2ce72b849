//! UDP generic segmentation offload (GSO): the limits of one GSO send, the
//! probe for kernel support, and the `UDP_SEGMENT` control message.
//!
//! One GSO send walks the IP stack, the route lookup and the device once
//! for all its datagrams; the kernel (or the NIC) cuts it into ordinary
//! datagrams of the segment size on the way, so the peer sees no
//! difference (on loopback the receiving socket's UDP layer splits it).
#![allow(unsafe_code)]

use std::mem::size_of;
use std::os::fd::RawFd;

/// Most datagrams one GSO send may carry: the kernel's `UDP_MAX_SEGMENTS`
/// (include/linux/udp.h), which is 64 from Linux 4.18 and 128 on recent
/// kernels; 64 is what every GSO-capable kernel takes.
pub const MAX_SEGMENTS: usize = 64;

/// Most payload bytes one GSO send may carry. The whole super-datagram
/// must fit one IP packet's 16-bit length: 65,535 minus the IPv4 header
/// (20) and the UDP header (8) is 65,507, and the kernel refuses more
/// (`EMSGSIZE`). 65,000 leaves room for IP options and IPv6 extension
/// headers.
pub const MAX_BYTES: usize = 65_000;

/// Room for one control message holding a `u16` (`CMSG_SPACE(2)` is 24 on
/// 64-bit Linux), kept 8-byte aligned as `cmsghdr` requires.
pub(crate) type Control = [u64; 4];

/// Whether the kernel knows `UDP_SEGMENT` on `fd` (Linux 4.18 and later).
/// Older kernels would ignore the control message and send the whole
/// group as one datagram, so GSO is used only after this check.
pub fn supported(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live locals sized for the option; the
    // kernel writes at most `len` bytes into `value`.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    result == 0
}

/// Write a `UDP_SEGMENT` control message carrying `segment` into
/// `control`; returns its length for `msg_controllen`.
pub(crate) fn write_segment_control(control: &mut Control, segment: u16) -> usize {
    // SAFETY: CMSG_SPACE is pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    // SAFETY: CMSG_LEN is pure arithmetic.
    let len = unsafe { libc::CMSG_LEN(size_of::<u16>() as u32) } as usize;
    debug_assert!(space <= size_of::<Control>());
    *control = [0; 4];
    let base = control.as_mut_ptr().cast::<u8>();
    // SAFETY: `control` is 32 bytes, 8-byte aligned, which holds a cmsghdr
    // followed by a u16 (`space` bytes); CMSG_DATA points inside it, and
    // the data is written unaligned.
    unsafe {
        let header = base.cast::<libc::cmsghdr>();
        (*header).cmsg_level = libc::SOL_UDP;
        (*header).cmsg_type = libc::UDP_SEGMENT;
        (*header).cmsg_len = len as _;
        libc::CMSG_DATA(header)
            .cast::<u16>()
            .write_unaligned(segment);
    }
    space
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_segment_control_message_is_what_the_kernel_reads() {
        let mut control: Control = [u64::MAX; 4];
        let space = write_segment_control(&mut control, 1232);
        assert_eq!(space, 24, "CMSG_SPACE(2) on 64-bit Linux");
        // SAFETY: `control` holds the cmsghdr just written.
        let header = unsafe { &*control.as_ptr().cast::<libc::cmsghdr>() };
        assert_eq!(header.cmsg_level, libc::SOL_UDP);
        assert_eq!(header.cmsg_type, libc::UDP_SEGMENT);
        let data = control.as_ptr().cast::<u8>().wrapping_add(16).cast::<u16>();
        // SAFETY: the data follows the 16-byte header inside `control`.
        assert_eq!(unsafe { data.read_unaligned() }, 1232);
    }
}
