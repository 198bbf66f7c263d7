//! `log_dest syslog`: one datagram per record to the local syslog socket
//! (`/dev/log`), in the BSD format syslog daemons read from it:
//! `<PRI>boxmq[PID]: message`. The facility is `daemon`, or `local0` to
//! `local7` with `log_facility`, as in Mosquitto.

use log::Level;

/// The facility number of `daemon`.
const DAEMON: u8 = 3;

/// The facility number of `local0`.
const LOCAL0: u8 = 16;

/// The syslog socket of this system.
const SOCKET: &str = "/dev/log";

/// An open syslog destination.
pub struct Syslog {
    #[cfg(unix)]
    socket: std::os::unix::net::UnixDatagram,
    facility: u8,
    /// `boxmq[PID]: `, made once.
    tag: String,
}

impl Syslog {
    /// Connects to the syslog socket; `local` is `log_facility`'s N.
    ///
    /// # Errors
    /// No syslog socket on this system (or not Unix).
    pub fn open(local: Option<u8>) -> std::io::Result<Syslog> {
        let facility = local.map_or(DAEMON, |n| LOCAL0 + n.min(7));
        let tag = format!("boxmq[{}]: ", std::process::id());
        #[cfg(unix)]
        {
            let socket = std::os::unix::net::UnixDatagram::unbound()?;
            socket
                .connect(SOCKET)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{SOCKET}: {e}")))?;
            Ok(Syslog {
                socket,
                facility,
                tag,
            })
        }
        #[cfg(not(unix))]
        {
            let _ = (facility, tag);
            Err(std::io::Error::other(format!(
                "there is no {SOCKET} on this system; use log_dest file"
            )))
        }
    }

    /// Sends one record; a full or absent daemon loses it (as syslog(3)).
    pub fn send(&self, level: Level, text: &[u8]) {
        let severity: u8 = match level {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        };
        let mut datagram = format!("<{}>{}", self.facility * 8 + severity, self.tag).into_bytes();
        datagram.extend_from_slice(text);
        #[cfg(unix)]
        let _ = self.socket.send(&datagram);
        #[cfg(not(unix))]
        let _ = datagram;
    }
}
