//! Socket addresses in their C form (`sockaddr_storage`), as `recvmmsg`
//! writes them and `sendmmsg`/`sendto` read them. Owns the only casts
//! between `sockaddr_storage` and `sockaddr_in`/`sockaddr_in6`.
#![allow(unsafe_code)]

use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// An all-zero `sockaddr_storage`: family `AF_UNSPEC`, which this crate
/// reads as "no address" (a connected socket's datagrams carry none).
pub fn empty() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is a plain C struct of integers and byte
    // arrays, for which all-zero bytes are a valid value.
    unsafe { zeroed() }
}

/// Write `addr` into `storage` in its C form; returns the length of that
/// form (what the kernel wants as the address length).
pub fn to_sockaddr(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than sockaddr_in and
            // aligned at least as strictly (the C standard's promise for
            // it), and the borrow of `storage` is exclusive.
            let sin = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            // SAFETY: all-zero bytes are a valid sockaddr_in (integers).
            *sin = unsafe { zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            // SAFETY: all-zero bytes are a valid sockaddr_in6 (integers).
            *sin6 = unsafe { zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            sin6.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Read the C form back; `None` for families other than IPv4 and IPv6
/// (including `AF_UNSPEC`, "no address").
pub fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which
            // fits in it and needs no stricter alignment.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Whether `storage` holds no address (`AF_UNSPEC`).
pub(crate) fn is_empty(storage: &libc::sockaddr_storage) -> bool {
    i32::from(storage.ss_family) == libc::AF_UNSPEC
}

/// The name pointer and length a message header wants for `storage`:
/// null and 0 for "no address", else the storage and its family's length.
pub(crate) fn name_of(
    storage: &mut libc::sockaddr_storage,
) -> (*mut libc::c_void, libc::socklen_t) {
    let len = match i32::from(storage.ss_family) {
        libc::AF_UNSPEC => return (std::ptr::null_mut(), 0),
        libc::AF_INET => size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => size_of::<libc::sockaddr_in6>(),
        _ => size_of::<libc::sockaddr_storage>(),
    };
    (
        (storage as *mut libc::sockaddr_storage).cast(),
        len as libc::socklen_t,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for text in ["127.0.0.1:53", "[::1]:5353", "[fe80::1%3]:9"] {
            let addr: SocketAddr = text.parse().unwrap();
            let mut storage = empty();
            to_sockaddr(addr, &mut storage);
            assert_eq!(from_sockaddr(&storage), Some(addr));
        }
    }

    #[test]
    fn an_empty_storage_is_no_address() {
        let mut storage = empty();
        assert!(is_empty(&storage));
        assert_eq!(from_sockaddr(&storage), None);
        let (name, len) = name_of(&mut storage);
        assert!(name.is_null());
        assert_eq!(len, 0);
        to_sockaddr("[::1]:53".parse().unwrap(), &mut storage);
        assert!(!is_empty(&storage));
        assert_eq!(
            name_of(&mut storage).1 as usize,
            size_of::<libc::sockaddr_in6>()
        );
    }
}
