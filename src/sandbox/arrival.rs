//! When a request reached the sandbox: the kernel's receive timestamp, not
//! the moment a handler got to run.
//!
//! # Why
//! The sandbox's rate limiter judges requests by their spacing, and at high
//! rates its tolerance is small (a millisecond at 500/s). On a real network
//! the provider's limiter sits on a machine of its own; the sandbox shares
//! the machine (and, in tests, the process) with the client. If it took the
//! time when its handler ran, a moment of its own scheduling delay would
//! bunch two well-spaced requests together and it would answer a 429 the
//! real service never would. The kernel stamps each segment as it arrives
//! (`SO_TIMESTAMPNS`), before any of the sandbox's threads is involved, so
//! the limiter sees the spacing the client actually produced.
//!
//! Elsewhere than Linux, or if the socket refuses the option, the time falls
//! back to when the handler runs. (Linux turns stamping on for the whole
//! stack a moment after the first socket asks for it; segments that arrive
//! before that are stamped when read, the same fallback.)

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A request's arrival time, in its extensions (on tokio's clock).
#[derive(Debug, Clone, Copy)]
pub struct ArrivedAt(pub Instant);

/// The latest receive timestamp of one connection, shared between its
/// stream and the service that answers its requests.
#[derive(Debug, Clone, Default)]
pub struct Arrivals(Arc<AtomicU64>);

impl Arrivals {
    /// When the latest bytes of this connection arrived, as a tokio
    /// [`Instant`]; now, if the kernel gave no timestamp.
    pub fn latest(&self) -> ArrivedAt {
        let nanos = self.0.load(Ordering::Relaxed);
        if nanos == 0 {
            return ArrivedAt(Instant::now());
        }
        let stamp = UNIX_EPOCH + Duration::from_nanos(nanos);
        let (now, wall) = clock_pair();
        // The wall clock may step; an age outside [0, 1 s] is not to be
        // trusted, and "now" is the safe answer.
        let age = wall
            .duration_since(stamp)
            .ok()
            .filter(|age| *age <= Duration::from_secs(1))
            .unwrap_or_default();
        ArrivedAt(now.checked_sub(age).unwrap_or(now))
    }

    fn record(&self, stamp: SystemTime) {
        if let Ok(since) = stamp.duration_since(UNIX_EPOCH) {
            let nanos = u64::try_from(since.as_nanos()).unwrap_or(0);
            self.0.store(nanos, Ordering::Relaxed);
        }
    }
}

/// Reads tokio's clock and the wall clock at (nearly) the same moment.
///
/// The kernel stamps arrivals on the wall clock, and the limiter runs on
/// tokio's: an arrival is placed `wall − stamp` before `now`. If the thread
/// is preempted between the two reads, that age is off by the preemption,
/// and at 500/s a few hundred microseconds turns an on-time request into a
/// refused one. So the wall clock is read between two reads of tokio's, and
/// the reading is taken again (a few times at most) if they are far apart.
fn clock_pair() -> (Instant, SystemTime) {
    const CLOSE: Duration = Duration::from_micros(20);
    let mut best: Option<(Duration, Instant, SystemTime)> = None;
    for _ in 0..4 {
        let before = Instant::now();
        let wall = SystemTime::now();
        let after = Instant::now();
        let spread = after - before;
        let mid = before + spread / 2;
        if spread <= CLOSE {
            return (mid, wall);
        }
        if best.is_none_or(|(s, _, _)| spread < s) {
            best = Some((spread, mid, wall));
        }
    }
    let (_, mid, wall) = best.expect("read at least once");
    (mid, wall)
}

/// A TCP stream that notes the kernel's receive timestamp of every read.
pub struct Stamped {
    inner: TcpStream,
    arrivals: Arrivals,
    /// Whether the kernel stamps this socket's segments.
    stamping: bool,
}

impl Stamped {
    /// Wraps `inner`, asking the kernel to timestamp what it receives.
    pub fn new(inner: TcpStream) -> Stamped {
        let stamping = sys::enable(&inner).is_ok();
        Stamped {
            inner,
            arrivals: Arrivals::default(),
            stamping,
        }
    }

    /// The handle a service reads arrival times from.
    pub fn arrivals(&self) -> Arrivals {
        self.arrivals.clone()
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.stamping {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        loop {
            ready!(this.inner.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let read = this.inner.try_io(tokio::io::Interest::READABLE, || {
                sys::recv_stamped(&this.inner, unfilled)
            });
            match read {
                Ok((n, stamp)) => {
                    if let Some(stamp) = stamp {
                        this.arrivals.record(stamp);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale: `try_io` cleared it, poll again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use tokio::net::TcpStream;

    /// Asks the kernel to attach a receive timestamp to every read.
    pub fn enable(stream: &TcpStream) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor, and a pointer to a c_int that
        // lives across the call, with its size.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&raw const on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// One `recvmsg`: the bytes read, and the receive timestamp of the
    /// latest segment among them if the kernel attached one.
    pub fn recv_stamped(
        stream: &TcpStream,
        buf: &mut [u8],
    ) -> io::Result<(usize, Option<SystemTime>)> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for a few control messages; u64s keep it aligned for cmsghdr.
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain old data; all-zero is a valid empty value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: `msg` points at `iov` (over `buf`) and `control`, which
        // outlive the call; the descriptor is a valid, non-blocking socket.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &raw mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut stamp = None;
        // SAFETY: the kernel filled `msg_control` with `msg_controllen`
        // bytes of well-formed control messages; CMSG_* walk them, and a
        // SCM_TIMESTAMPNS message carries one timespec (read unaligned).
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    if let (Ok(secs), Ok(nanos)) =
                        (u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec))
                    {
                        stamp = Some(UNIX_EPOCH + Duration::new(secs, nanos));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
            }
        }
        Ok((usize::try_from(n).unwrap_or(0), stamp))
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::time::SystemTime;

    use tokio::net::TcpStream;

    pub fn enable(_: &TcpStream) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub fn recv_stamped(_: &TcpStream, _: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_carry_the_kernels_arrival_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut server = Stamped::new(server);
        let arrivals = server.arrivals();
        // The kernel turns stamping on for the whole stack a moment after
        // the first socket asks (deferred work); until then segments are
        // stamped when read. The sandbox only ever asks once per process;
        // give the switch time to happen here.
        tokio::time::sleep(Duration::from_millis(20)).await;

        client.write_all(b"first").await.unwrap();
        // The bytes wait in the socket while the "server" is busy.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut buf = [0u8; 16];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"first");
        let ArrivedAt(at) = arrivals.latest();
        if cfg!(target_os = "linux") {
            assert!(server.stamping, "the kernel should stamp loopback sockets");
            // Stamped on arrival, not when read 50 ms later.
            assert!(
                at.elapsed() >= Duration::from_millis(45),
                "{:?}",
                at.elapsed()
            );
        }
        // Writes pass through.
        server.write_all(b"back").await.unwrap();
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
    }
}
