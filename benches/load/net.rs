//! A single-threaded, non-blocking MQTT client driver on `mio`.
//!
//! One `Poll` owns every simulated client. Output is queued per connection
//! and written once per turn (frames coalesced), or at once with
//! [`Net::flush`]. Input is read into one shared 64 KiB buffer and frames are
//! decoded in place with `boxmq::codec`; only the tail of a frame cut by a
//! read is copied into the connection's own buffer. Frames split across reads
//! and many frames per read are both handled.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boxmq::codec::{self, Packet, ProtocolVersion};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

/// Largest frame accepted from a broker.
const MAX_PACKET: usize = 1 << 20;
/// Size of the shared read buffer.
const READ_CHUNK: usize = 64 * 1024;
/// Reads per connection per turn before the others get a go.
const READS_PER_TURN: usize = 16;

/// What a scenario is told about its connections.
pub trait Handler {
    /// A complete frame arrived on `id`; `now` is when it was read.
    fn on_packet(&mut self, net: &mut Net, id: usize, p: &Packet<'_>, now: Instant);
    /// Connection `id` was closed by the peer or failed (it is gone already).
    fn on_closed(&mut self, _net: &mut Net, _id: usize) {}
}

struct Conn {
    stream: TcpStream,
    /// The start of a frame that a read cut off.
    rbuf: Vec<u8>,
    /// Queued output; `wpos` bytes of it are written already.
    wbuf: Vec<u8>,
    wpos: usize,
    /// The non-blocking connect has completed (first WRITABLE seen).
    connected: bool,
    /// Queued in `Net::dirty`.
    dirty: bool,
    /// Close once `wbuf` is written.
    close_when_flushed: bool,
}

/// Counters of the driver itself.
#[derive(Default, Debug, Clone)]
pub struct NetStats {
    /// Connections that failed to connect or were closed by the peer.
    pub closed_by_peer: u64,
    /// Frames the codec refused.
    pub decode_errors: u64,
}

/// The client side of many simulated MQTT clients.
pub struct Net {
    poll: Poll,
    events: Events,
    conns: Slab<Conn>,
    scratch: Vec<u8>,
    dirty: Vec<usize>,
    /// Connections with more to read when their turn ended.
    backlog: Vec<usize>,
    /// Counters.
    pub stats: NetStats,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl Net {
    /// An empty driver.
    pub fn new() -> io::Result<Net> {
        Ok(Net {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Slab::new(),
            scratch: vec![0; READ_CHUNK],
            dirty: Vec::new(),
            backlog: Vec::new(),
            stats: NetStats::default(),
        })
    }

    /// Starts a non-blocking connect to `addr`. Output sent before the
    /// connect completes is queued.
    pub fn open(&mut self, addr: SocketAddr) -> io::Result<usize> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let entry = self.conns.vacant_entry();
        let id = entry.key();
        self.poll.registry().register(
            &mut stream,
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        entry.insert(Conn {
            stream,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            connected: false,
            dirty: false,
            close_when_flushed: false,
        });
        Ok(id)
    }

    /// Whether `id` is still open.
    pub fn is_open(&self, id: usize) -> bool {
        self.conns.contains(id)
    }

    /// Appends a frame to `id`'s output with `encode`; written at the end of
    /// the turn (or by [`Net::flush`]).
    pub fn send(&mut self, id: usize, encode: impl FnOnce(&mut Vec<u8>)) {
        if let Some(c) = self.conns.get_mut(id) {
            encode(&mut c.wbuf);
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// Bytes queued for `id` and not yet taken by the kernel.
    pub fn pending(&self, id: usize) -> usize {
        self.conns.get(id).map_or(0, |c| c.wbuf.len() - c.wpos)
    }

    /// Writes what is queued for `id` now, as far as the socket takes it.
    pub fn flush(&mut self, id: usize) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if !c.connected {
            return;
        }
        while c.wpos < c.wbuf.len() {
            match c.stream.write(&c.wbuf[c.wpos..]) {
                Ok(0) => break,
                Ok(n) => c.wpos += n,
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.stats.closed_by_peer += 1;
                    self.close(id);
                    return;
                }
            }
        }
        if c.wpos == c.wbuf.len() {
            c.wbuf.clear();
            c.wpos = 0;
            if c.close_when_flushed {
                self.close(id);
            }
        } else if c.wpos > READ_CHUNK {
            c.wbuf.drain(..c.wpos);
            c.wpos = 0;
        }
    }

    /// Closes `id` once its queued output is written (at once if none is).
    pub fn close_after_flush(&mut self, id: usize) {
        if let Some(c) = self.conns.get_mut(id) {
            c.close_when_flushed = true;
            if c.wpos == c.wbuf.len() && c.connected {
                self.close(id);
            }
        }
    }

    /// Closes `id` now; queued output is dropped.
    pub fn close(&mut self, id: usize) {
        if self.conns.contains(id) {
            let mut c = self.conns.remove(id);
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    /// Closes every connection.
    pub fn close_all(&mut self) {
        let ids: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for id in ids {
            self.close(id);
        }
    }

    fn flush_dirty(&mut self) {
        while let Some(id) = self.dirty.pop() {
            if let Some(c) = self.conns.get_mut(id) {
                c.dirty = false;
                self.flush(id);
            }
        }
    }

    /// One turn: waits up to `timeout` for events, reads and dispatches every
    /// complete frame to `h`, then writes queued output.
    pub fn turn<H: Handler>(&mut self, timeout: Duration, h: &mut H) -> io::Result<()> {
        self.flush_dirty();
        let timeout = if self.backlog.is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                let readable = e.is_readable() || e.is_read_closed() || e.is_error();
                (e.token().0, readable, e.is_writable())
            })
            .collect();
        for id in std::mem::take(&mut self.backlog) {
            ready.push((id, true, false));
        }
        for (id, readable, writable) in ready {
            if writable {
                if let Some(c) = self.conns.get_mut(id) {
                    if !c.connected {
                        match c.stream.take_error() {
                            Ok(None) => c.connected = true,
                            _ => {
                                self.stats.closed_by_peer += 1;
                                self.close(id);
                                h.on_closed(self, id);
                                continue;
                            }
                        }
                    }
                    self.flush(id);
                }
            }
            if readable {
                self.read(id, h);
            }
        }
        self.flush_dirty();
        Ok(())
    }

    fn read<H: Handler>(&mut self, id: usize, h: &mut H) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut more = false;
        for round in 0..READS_PER_TURN {
            let Some(c) = self.conns.get_mut(id) else {
                break;
            };
            if !c.connected {
                // A read event before the writable one: the connect failed
                // or completed; let take_error decide on the write side.
                match c.stream.take_error() {
                    Ok(None) => c.connected = true,
                    _ => {
                        self.stats.closed_by_peer += 1;
                        self.close(id);
                        h.on_closed(self, id);
                        break;
                    }
                }
            }
            let n = match c.stream.read(&mut scratch) {
                Ok(0) => {
                    self.stats.closed_by_peer += 1;
                    self.close(id);
                    h.on_closed(self, id);
                    break;
                }
                Ok(n) => n,
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.stats.closed_by_peer += 1;
                    self.close(id);
                    h.on_closed(self, id);
                    break;
                }
            };
            let now = Instant::now();
            let mut rbuf = std::mem::take(&mut c.rbuf);
            let fresh = &scratch[..n];
            let (data, from_scratch): (&[u8], bool) = if rbuf.is_empty() {
                (fresh, true)
            } else {
                rbuf.extend_from_slice(fresh);
                (&rbuf, false)
            };
            let mut used = 0;
            let mut broken = false;
            while used < data.len() {
                match codec::decode(&data[used..], ProtocolVersion::V311, MAX_PACKET) {
                    Ok(Some((p, k))) => {
                        used += k;
                        h.on_packet(self, id, &p, now);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
            if broken {
                self.stats.decode_errors += 1;
                self.close(id);
                h.on_closed(self, id);
                break;
            }
            let Some(c) = self.conns.get_mut(id) else {
                break;
            };
            if from_scratch {
                rbuf.clear();
                rbuf.extend_from_slice(&fresh[used..]);
            } else {
                rbuf.drain(..used);
            }
            c.rbuf = rbuf;
            if n < scratch.len() {
                // Short read: the socket is drained for now.
                break;
            }
            // Acknowledgements produced by this chunk go out before more is
            // read, so the broker's window keeps moving.
            self.flush(id);
            more = round + 1 == READS_PER_TURN;
        }
        if more && self.conns.contains(id) {
            // Possibly more to read; edge-triggered, so come back next turn.
            self.backlog.push(id);
        }
        self.scratch = scratch;
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.close_all();
    }
}
