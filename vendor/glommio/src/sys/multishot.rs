// heimdall patch: a multishot `recvmsg` on the latency ring and the ring of
// provided buffers it receives into (io_uring, Linux 6.0+).
//
// One request stays armed across datagrams: the kernel receives each
// datagram into a buffer it takes from the ring and posts a completion with
// `IORING_CQE_F_MORE` set, so no request is submitted, no poll armed and
// torn down, and no buffer allocated per datagram. The completions queue
// here until the receiver takes them; it gives each buffer back to the ring
// once it has read it.
use std::{
    alloc::{self, Layout},
    cell::{Cell, RefCell, UnsafeCell},
    collections::VecDeque,
    io,
    os::unix::io::RawFd,
    ptr::{self, NonNull},
    sync::atomic::{AtomicU16, Ordering},
};

use crate::uring_sys;

const IORING_REGISTER_PBUF_RING: libc::c_uint = 22;
const IORING_UNREGISTER_PBUF_RING: libc::c_uint = 23;
/// The completion carries a buffer id (in its upper 16 bits).
pub(crate) const IORING_CQE_F_BUFFER: u32 = 1 << 0;
/// The request stays armed: more completions follow.
pub(crate) const IORING_CQE_F_MORE: u32 = 1 << 1;
const IORING_CQE_BUFFER_SHIFT: u32 = 16;
/// `sqe->ioprio` flag of a receive: stay armed.
pub(crate) const IORING_RECV_MULTISHOT: u16 = 1 << 1;
/// The header the kernel writes at the start of each buffer
/// (`struct io_uring_recvmsg_out`): name, control and payload lengths, flags.
pub(crate) const RECVMSG_OUT_LEN: usize = 16;
/// Room for the sender's address in each buffer (a `sockaddr_in6`).
pub(crate) const NAME_ROOM: usize = std::mem::size_of::<libc::sockaddr_in6>();

#[repr(C)]
struct BufReg {
    ring_addr: u64,
    ring_entries: u32,
    bgid: u16,
    flags: u16,
    resv: [u64; 3],
}

#[repr(C)]
struct RingEntry {
    addr: u64,
    len: u32,
    bid: u16,
    /// In entry 0, the ring's tail.
    resv: u16,
}

thread_local! {
    /// Buffer group ids are per ring; one executor per thread.
    static NEXT_GROUP: Cell<u16> = const { Cell::new(1) };
}

/// The state a multishot receive shares with its request: the buffer ring,
/// the `msghdr` the kernel reads at submission, and the completions not yet
/// taken. It lives as long as the request (the source holds it), so the
/// kernel never writes into freed memory.
pub(crate) struct MultishotState {
    ring_fd: RawFd,
    group: u16,
    entries: u16,
    ring: NonNull<u8>,
    ring_layout: Layout,
    buffers: NonNull<u8>,
    buffers_layout: Layout,
    buffer_size: usize,
    tail: Cell<u16>,
    registered: Cell<bool>,
    pub(crate) hdr: UnsafeCell<libc::msghdr>,
    /// `(result, flags)` of each completion, oldest first.
    pub(crate) completions: RefCell<VecDeque<(i32, u32)>>,
}

impl std::fmt::Debug for MultishotState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultishotState")
            .field("group", &self.group)
            .field("entries", &self.entries)
            .field("buffer_size", &self.buffer_size)
            .finish()
    }
}

impl MultishotState {
    /// `entries` buffers (a power of two) of `buffer_size` bytes each,
    /// registered with the ring `ring_fd` and all given to it.
    pub(crate) fn new(ring_fd: RawFd, entries: u16, buffer_size: usize) -> io::Result<Self> {
        if !entries.is_power_of_two() || buffer_size <= RECVMSG_OUT_LEN + NAME_ROOM {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let ring_layout = Layout::from_size_align(
            (usize::from(entries) * std::mem::size_of::<RingEntry>()).max(4096),
            4096,
        )
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let buffers_layout = Layout::from_size_align(usize::from(entries) * buffer_size, 64)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: both layouts have a non-zero size.
        let ring = NonNull::new(unsafe { alloc::alloc_zeroed(ring_layout) })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let Some(buffers) = NonNull::new(unsafe { alloc::alloc(buffers_layout) }) else {
            unsafe { alloc::dealloc(ring.as_ptr(), ring_layout) };
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        };
        let group = NEXT_GROUP.with(|next| {
            let group = next.get();
            next.set(group.wrapping_add(1).max(1));
            group
        });
        // SAFETY: a zeroed msghdr is valid; the kernel reads only the name
        // and control lengths of a multishot receive's header.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_namelen = NAME_ROOM as libc::socklen_t;
        let state = MultishotState {
            ring_fd,
            group,
            entries,
            ring,
            ring_layout,
            buffers,
            buffers_layout,
            buffer_size,
            tail: Cell::new(0),
            registered: Cell::new(false),
            hdr: UnsafeCell::new(hdr),
            completions: RefCell::new(VecDeque::with_capacity(usize::from(entries))),
        };
        let reg = BufReg {
            ring_addr: ring.as_ptr() as u64,
            ring_entries: u32::from(entries),
            bgid: group,
            flags: 0,
            resv: [0; 3],
        };
        // SAFETY: `reg` is a valid io_uring_buf_reg for the duration of
        // the call; the ring memory stays allocated until unregistered.
        let ret = unsafe {
            uring_sys::syscalls::io_uring_register(
                ring_fd,
                IORING_REGISTER_PBUF_RING,
                &reg as *const BufReg as *const libc::c_void,
                1,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        state.registered.set(true);
        for bid in 0..entries {
            state.stage(bid);
        }
        state.publish();
        Ok(state)
    }

    /// The buffer group the receive selects from.
    pub(crate) fn group(&self) -> u16 {
        self.group
    }

    /// Write buffer `bid` into the ring at the local tail (not yet visible
    /// to the kernel: see [`MultishotState::publish`]).
    fn stage(&self, bid: u16) {
        let tail = self.tail.get();
        let index = usize::from(tail & (self.entries - 1));
        // SAFETY: `index` < entries, and the ring holds `entries` entries;
        // `bid` < entries, so the buffer is inside the allocation. Only the
        // address, length and id are written: entry 0's last field is the
        // tail the kernel reads.
        unsafe {
            let entry = self.ring.as_ptr().cast::<RingEntry>().add(index);
            ptr::addr_of_mut!((*entry).addr).write(
                self.buffers
                    .as_ptr()
                    .add(usize::from(bid) * self.buffer_size) as u64,
            );
            ptr::addr_of_mut!((*entry).len).write(self.buffer_size as u32);
            ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail.set(tail.wrapping_add(1));
    }

    /// Make the staged buffers visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail is the u16 at offset 14 of entry 0, which the
        // kernel reads with an acquire load; the entries were written
        // before this release store.
        unsafe {
            let tail = &*(self.ring.as_ptr().add(14) as *const AtomicU16);
            tail.store(self.tail.get(), Ordering::Release);
        }
    }

    /// Give buffer `bid` back to the kernel.
    pub(crate) fn give_back(&self, bid: u16) {
        if bid < self.entries {
            self.stage(bid);
            self.publish();
        }
    }

    /// The buffer a completion with these `flags` filled (`res` bytes),
    /// and its id, if it names one.
    pub(crate) fn buffer(&self, res: i32, flags: u32) -> Option<(u16, &[u8])> {
        if flags & IORING_CQE_F_BUFFER == 0 {
            return None;
        }
        let bid = (flags >> IORING_CQE_BUFFER_SHIFT) as u16;
        if bid >= self.entries {
            return None;
        }
        let len = usize::try_from(res).unwrap_or(0).min(self.buffer_size);
        // SAFETY: the buffer is inside the allocation; the kernel wrote
        // `res` bytes into it and does not touch it again until it is
        // given back.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                self.buffers.as_ptr().add(usize::from(bid) * self.buffer_size),
                len,
            )
        };
        Some((bid, bytes))
    }
}

impl Drop for MultishotState {
    fn drop(&mut self) {
        if self.registered.get() {
            let reg = BufReg {
                ring_addr: 0,
                ring_entries: 0,
                bgid: self.group,
                flags: 0,
                resv: [0; 3],
            };
            // SAFETY: as in `new`. After this the kernel selects no buffer
            // from this group, so the memory may go.
            unsafe {
                uring_sys::syscalls::io_uring_register(
                    self.ring_fd,
                    IORING_UNREGISTER_PBUF_RING,
                    &reg as *const BufReg as *const libc::c_void,
                    1,
                );
            }
        }
        // SAFETY: allocated in `new` with these layouts.
        unsafe {
            alloc::dealloc(self.ring.as_ptr(), self.ring_layout);
            alloc::dealloc(self.buffers.as_ptr(), self.buffers_layout);
        }
    }
}
