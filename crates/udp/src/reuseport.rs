//! Choosing the socket of a `SO_REUSEPORT` group with a classic BPF
//! program (`SO_ATTACH_REUSEPORT_CBPF`, Linux 4.5+).
//!
//! The kernel runs the program on each datagram addressed to the group,
//! with the UDP payload at offset 0, and delivers the datagram to the
//! socket whose index (the order the group's sockets were bound in) the
//! program returns; an index past the group falls back to the kernel's
//! flow hash. What the program computes is the caller's business (this
//! crate knows nothing of DNS); this module only holds the instruction
//! encoding and the `setsockopt`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

/// `SO_ATTACH_REUSEPORT_CBPF` from `asm-generic/socket.h` (the value on
/// x86, arm and most architectures; the libc crate has it for Android
/// only).
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// One classic BPF instruction.
pub type Instruction = libc::sock_filter;

/// `BPF_STMT(code, k)`.
pub const fn statement(code: u32, k: u32) -> Instruction {
    // The opcode fits 16 bits by construction of the BPF_* constants.
    Instruction {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// `BPF_JUMP(code, k, jt, jf)`: offsets count the instructions skipped.
pub const fn jump(code: u32, k: u32, jt: u8, jf: u8) -> Instruction {
    Instruction {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Attach `program` to the reuseport group `fd` belongs to (any member
/// will do); it replaces the program attached before, if any.
pub fn attach_reuseport_program(fd: RawFd, program: &[Instruction]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` valid instructions for the duration
    // of the call; the kernel copies the program and keeps no pointer.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            std::ptr::from_ref(&fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
