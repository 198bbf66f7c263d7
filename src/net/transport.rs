//! What a listener puts between the socket and the core: nothing (plain
//! MQTT, the zero-copy path in `mod.rs`), TLS, WebSockets, or WebSockets
//! over TLS. A connection with a [`Layer`] reads into the shared buffer as
//! any other; the layer decodes it into the connection's own `partial`
//! buffer, which the core parses. Output goes from the core's buffer into
//! the layer (framed, encrypted) and from there to the socket; the layer
//! takes more only when its own buffer has drained, so the core's
//! `max_output_buffer` still bounds what a slow reader makes the broker hold.
//!
//! Without the `tls` and `websockets` features no layer exists and every
//! connection takes the plain path.

use std::io;
use std::time::Instant;

use mio::net::TcpStream;

use crate::config::{Config, ConfigError};
use crate::core::adapter::{self, Inbox};
use crate::core::{ConnId, Core};

#[cfg(feature = "tls")]
use super::tls::{TlsConn, TlsListener};
#[cfg(feature = "websockets")]
use super::ws::WsConn;

/// Bytes a layer holds for the wire before it takes more from the core.
#[cfg(feature = "websockets")]
const WIRE_ROOM: usize = 64 * 1024;

/// How a listener wraps the connections it accepts.
#[derive(Clone, Default)]
pub(crate) struct Acceptor {
    #[cfg(feature = "tls")]
    tls: Option<TlsListener>,
    /// `protocol websockets`, with frames of at most this many bytes.
    #[cfg(feature = "websockets")]
    websockets: Option<usize>,
}

impl Acceptor {
    /// One acceptor per listener of `config`, in order, its files read and
    /// checked. Errors name the file.
    pub(crate) fn load_all(config: &Config) -> Result<Vec<Acceptor>, ConfigError> {
        config
            .listeners
            .iter()
            .map(|l| {
                // Read only by the features; without them every listener is plain.
                let _ = l;
                Ok(Acceptor {
                    #[cfg(feature = "tls")]
                    tls: TlsListener::load(l)?,
                    #[cfg(feature = "websockets")]
                    websockets: (l.protocol == crate::config::ListenerProtocol::WebSockets)
                        .then_some(config.limits.max_packet_size as usize),
                })
            })
            .collect()
    }

    /// The layer of a new connection; `None` for plain MQTT.
    pub(crate) fn layer(&self) -> io::Result<Option<Box<Layer>>> {
        #[cfg(feature = "tls")]
        let tls = self.tls.as_ref().map(TlsListener::accept).transpose()?;
        #[cfg(feature = "websockets")]
        let ws = self.websockets.map(WsConn::new);
        let layer = Layer {
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "websockets")]
            ws,
            #[cfg(all(feature = "tls", feature = "websockets"))]
            scratch: Vec::new(),
        };
        Ok(layer.is_some().then(|| Box::new(layer)))
    }
}

/// The layer of listener `index`'s new connection (`Err`: logged, refuse
/// the connection).
pub(crate) fn layer_for(acceptors: &[Acceptor], index: usize) -> Result<Option<Box<Layer>>, ()> {
    match acceptors.get(index).map(Acceptor::layer) {
        None => Ok(None),
        Some(Ok(layer)) => Ok(layer),
        Some(Err(e)) => {
            log::error!("cannot set up TLS for a new connection: {e}");
            Err(())
        }
    }
}

/// A connection's TLS and/or WebSocket state.
#[cfg_attr(
    not(any(feature = "tls", feature = "websockets")),
    allow(dead_code, clippy::unused_self)
)]
pub(crate) struct Layer {
    #[cfg(feature = "tls")]
    tls: Option<TlsConn>,
    #[cfg(feature = "websockets")]
    ws: Option<WsConn>,
    /// wss: TLS plaintext on its way to the WebSocket decoder.
    #[cfg(all(feature = "tls", feature = "websockets"))]
    scratch: Vec<u8>,
}

/// What [`Layer::flush`] achieved.
pub(crate) enum Flushed {
    /// Everything the core had is on the wire.
    Done,
    /// The socket is full; the WRITABLE event brings the rest.
    Blocked,
    /// Write error: close.
    Broken,
}

/// Why a layer ended a connection: for its one log line.
struct End {
    message: String,
    normal: bool,
}

#[cfg_attr(
    not(any(feature = "tls", feature = "websockets")),
    allow(dead_code, clippy::unused_self, clippy::ptr_arg)
)]
impl Layer {
    fn is_some(&self) -> bool {
        #[allow(unused_mut)]
        let mut any = false;
        #[cfg(feature = "tls")]
        {
            any |= self.tls.is_some();
        }
        #[cfg(feature = "websockets")]
        {
            any |= self.ws.is_some();
        }
        any
    }

    /// Decodes bytes from the socket into MQTT bytes appended to `mqtt`.
    #[allow(unused_variables)]
    fn input(&mut self, data: &[u8], mqtt: &mut Vec<u8>) -> Result<(), End> {
        #[cfg(all(feature = "tls", feature = "websockets"))]
        if let (Some(tls), Some(ws)) = (self.tls.as_mut(), self.ws.as_mut()) {
            let decrypted = tls.input(data, &mut self.scratch);
            let decoded = ws.input(&self.scratch, mqtt);
            self.scratch.clear();
            decrypted.map_err(|e| End {
                message: e.message,
                normal: e.normal,
            })?;
            return decoded.map_err(|e| End {
                message: e.message,
                normal: e.normal,
            });
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            return tls.input(data, mqtt).map_err(|e| End {
                message: e.message,
                normal: e.normal,
            });
        }
        #[cfg(feature = "websockets")]
        if let Some(ws) = self.ws.as_mut() {
            return ws.input(data, mqtt).map_err(|e| End {
                message: e.message,
                normal: e.normal,
            });
        }
        Ok(())
    }

    /// Takes what it can of the core's output; how many bytes.
    #[allow(unused_variables)]
    fn push(&mut self, out: &[u8]) -> usize {
        #[cfg(feature = "websockets")]
        if let Some(ws) = self.ws.as_mut() {
            if ws.out.len() >= WIRE_ROOM {
                return 0;
            }
            ws.send(out);
            self.ws_to_tls();
            return out.len();
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            return tls.send(out);
        }
        0
    }

    /// wss: hands WebSocket frames to TLS, as much as it takes.
    fn ws_to_tls(&mut self) {
        #[cfg(all(feature = "tls", feature = "websockets"))]
        if let (Some(tls), Some(ws)) = (self.tls.as_mut(), self.ws.as_mut()) {
            while !ws.out.is_empty() {
                let n = tls.send(&ws.out);
                if n == 0 {
                    break;
                }
                ws.out.drain(..n);
            }
        }
    }

    /// Writes what waits for the wire, until done or `WouldBlock`.
    #[allow(unused_variables)]
    fn write_wire(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            loop {
                if let Some(tls) = self.tls.as_mut() {
                    tls.write_to(stream)?;
                }
                // wss: frames that waited for room in TLS.
                self.ws_to_tls();
                if !self.tls.as_ref().is_some_and(TlsConn::wants_write) {
                    return Ok(());
                }
            }
        }
        #[cfg(feature = "websockets")]
        if let Some(ws) = self.ws.as_mut() {
            while !ws.out.is_empty() {
                match io::Write::write(stream, &ws.out) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        ws.out.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if ws.out.capacity() > WIRE_ROOM {
                ws.out.shrink_to(WIRE_ROOM / 16);
            }
        }
        Ok(())
    }

    /// Once, after a TLS handshake with `use_identity_as_username` or
    /// `use_subject_as_username`: the user name from the client's
    /// certificate.
    fn take_identity(&mut self) -> Option<Result<String, String>> {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            return tls.take_identity();
        }
        None
    }

    /// Moves the core's output for `id` through the layer to the socket.
    pub(crate) fn flush(
        &mut self,
        stream: &mut TcpStream,
        core: &mut Core,
        id: ConnId,
        now: Instant,
    ) -> Flushed {
        // A layer whose wire buffer was full takes nothing; once written,
        // it takes again. Two rounds without progress: wait for an event.
        let mut stuck = false;
        loop {
            let took = adapter::drain(core, id, now, |out| self.push(out));
            match self.write_wire(stream) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flushed::Blocked,
                Err(e) => {
                    log::debug!("write error on a TLS/WebSocket connection: {e}");
                    return Flushed::Broken;
                }
            }
            if core.pending_output(id).is_empty() || (took == 0 && stuck) {
                return Flushed::Done;
            }
            stuck = took == 0;
        }
    }

    /// The connection ends: a WebSocket close frame and TLS close_notify,
    /// written if the socket takes them now.
    pub(crate) fn finish(&mut self, stream: &mut TcpStream) {
        #[cfg(feature = "websockets")]
        if let Some(ws) = self.ws.as_mut() {
            ws.goodbye();
        }
        self.ws_to_tls();
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            tls.goodbye();
        }
        let _ = self.write_wire(stream);
    }
}

/// Bytes read from a layered connection: decodes them into `inbox`,
/// hands the core what it can take, writes what the layer has to say
/// (handshake). `false`: the connection ends (logged); close it.
pub(crate) fn read(
    layer: &mut Layer,
    stream: &mut TcpStream,
    fresh: &[u8],
    inbox: &mut Inbox,
    core: &mut Core,
    id: ConnId,
    now: Instant,
) -> bool {
    let peer = |stream: &TcpStream| {
        stream
            .peer_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string())
    };
    let decoded = layer.input(fresh, inbox.buffer());
    match layer.take_identity() {
        Some(Ok(name)) => core.set_identity(id, &name),
        Some(Err(why)) => {
            log::info!("connection from {} closed: {why}", peer(stream));
            return false;
        }
        None => {}
    }
    inbox.feed(core, id, &[], now);
    if let Err(end) = decoded {
        if end.normal {
            log::debug!("connection from {}: {}", peer(stream), end.message);
        } else {
            log::info!("connection from {} closed: {}", peer(stream), end.message);
        }
        let _ = layer.write_wire(stream);
        return false;
    }
    match layer.write_wire(stream) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
        Err(e) => {
            log::debug!("write error to {}: {e}", peer(stream));
            false
        }
    }
}
