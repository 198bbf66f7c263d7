//! `$SYS/broker/...` topics: the broker's own figures, published retained
//! every `sys_interval` seconds when they changed, with Mosquitto's topic
//! names so dashboards and exporters written for it keep working.
//! Clients cannot publish under `$SYS`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::Core;
use super::message::Incoming;
use crate::codec::QoS;

/// Time constants of the load averages, and the suffix of their topics.
const LOAD_WINDOWS: [(f64, &str); 3] = [(60.0, "1min"), (300.0, "5min"), (900.0, "15min")];

/// One exponentially weighted per-minute rate for each window.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    last_total: u64,
    avg: [f64; 3],
}

impl Load {
    /// Folds in the growth of `total` over `secs` seconds.
    fn update(&mut self, total: u64, secs: f64) {
        let per_minute = total.saturating_sub(self.last_total) as f64 * 60.0 / secs;
        self.last_total = total;
        for (avg, (window, _)) in self.avg.iter_mut().zip(LOAD_WINDOWS) {
            let keep = (-secs / window).exp();
            *avg = *avg * keep + per_minute * (1.0 - keep);
        }
    }
}

/// State of the `$SYS` publisher.
#[derive(Debug)]
pub(crate) struct SysState {
    interval: Option<Duration>,
    started: Option<Instant>,
    last_run: Option<Instant>,
    next: Option<Instant>,
    /// What was last published on each topic, to publish only changes.
    last: HashMap<String, String>,
    loads: [Load; 4],
}

impl SysState {
    pub fn new(interval_secs: u32) -> SysState {
        SysState {
            interval: (interval_secs > 0).then(|| Duration::from_secs(u64::from(interval_secs))),
            started: None,
            last_run: None,
            next: None,
            last: HashMap::new(),
            loads: [Load::default(); 4],
        }
    }

    /// When the next update is due; `None` when `$SYS` is off or not started.
    pub fn next(&self) -> Option<Instant> {
        self.next
    }
}

/// Where the per-client figures go: `$SYS/broker/client/ID/dropped`.
const CLIENT_PREFIX: &str = "$SYS/broker/client/";

impl Core {
    /// Publishes the `$SYS` figures when due. The first call starts the
    /// clock (uptime counts from it).
    pub(super) fn sys_tick(&mut self, now: Instant) {
        let Some(interval) = self.sys.interval else {
            return;
        };
        if self.sys.started.is_none() {
            self.sys.started = Some(now);
        } else if self.sys.next.is_some_and(|t| t > now) {
            return;
        }
        self.sys.next = Some(now + interval);
        let secs = self
            .sys
            .last_run
            .map_or(interval.as_secs_f64(), |t| {
                now.duration_since(t).as_secs_f64()
            })
            .max(0.001);
        self.sys.last_run = Some(now);
        let figures = self.sys_figures(now, secs);
        let current: std::collections::HashSet<String> = figures
            .iter()
            .filter(|(t, _)| t.starts_with(CLIENT_PREFIX))
            .map(|(t, _)| t.clone())
            .collect();
        for (topic, payload) in figures {
            if self.sys.last.get(&topic) == Some(&payload) {
                continue;
            }
            let msg = Incoming {
                topic: &topic,
                payload: payload.as_bytes(),
                qos: QoS::AtMostOnce,
                retain: true,
                props: &[],
                expiry: None,
            };
            self.route(&msg, None, now);
            self.sys.last.insert(topic, payload);
        }
        // A per-client figure whose session is gone: its retained message
        // is cleared, so what `$SYS` keeps stays bounded by the sessions.
        let gone: Vec<String> = self
            .sys
            .last
            .keys()
            .filter(|t| t.starts_with(CLIENT_PREFIX) && !current.contains(t.as_str()))
            .cloned()
            .collect();
        for topic in gone {
            let msg = Incoming {
                topic: &topic,
                payload: &[],
                qos: QoS::AtMostOnce,
                retain: true,
                props: &[],
                expiry: None,
            };
            self.route(&msg, None, now);
            self.sys.last.remove(&topic);
        }
    }

    fn sys_figures(&mut self, now: Instant, secs: f64) -> Vec<(String, String)> {
        let st = self.stats();
        let uptime = self
            .sys
            .started
            .map_or(0, |t| now.duration_since(t).as_secs());
        let (mut stored, mut stored_bytes) = (0usize, 0usize);
        for (_, s) in self.sessions.iter() {
            stored += s.queue.len() + s.inflight.len();
            stored_bytes += s.queued_bytes
                + s.inflight
                    .iter()
                    .map(|f| f.pending.msg.cost())
                    .sum::<usize>();
        }
        let disconnected = st.sessions.saturating_sub(st.clients_connected);
        let mut out: Vec<(String, String)> = vec![
            (
                "version".into(),
                format!("boxmq {}", env!("CARGO_PKG_VERSION")),
            ),
            ("uptime".into(), format!("{uptime} seconds")),
            ("clients/connected".into(), st.clients_connected.to_string()),
            ("clients/disconnected".into(), disconnected.to_string()),
            ("clients/total".into(), st.sessions.to_string()),
            ("clients/maximum".into(), st.clients_maximum.to_string()),
            ("messages/received".into(), st.messages_received.to_string()),
            ("messages/sent".into(), st.messages_sent.to_string()),
            (
                "publish/messages/dropped".into(),
                st.publish_dropped.to_string(),
            ),
            ("bytes/received".into(), st.bytes_received.to_string()),
            ("bytes/sent".into(), st.bytes_sent.to_string()),
            ("subscriptions/count".into(), st.subscriptions.to_string()),
            (
                "retained messages/count".into(),
                st.retained_messages.to_string(),
            ),
            ("store/messages/count".into(), stored.to_string()),
            ("store/messages/bytes".into(), stored_bytes.to_string()),
        ];
        if let Some(f) = self.persist_figures() {
            // boxmq's own: what the durable acks cost (one sync per batch).
            out.extend([
                (
                    "persistence/sync/last_us".into(),
                    f.last_sync.as_micros().to_string(),
                ),
                (
                    "persistence/sync/max_us".into(),
                    f.max_sync.as_micros().to_string(),
                ),
                ("persistence/log/bytes".into(), f.log_bytes.to_string()),
                (
                    "persistence/bytes/written".into(),
                    f.bytes_written.to_string(),
                ),
            ]);
        }
        let totals = [
            ("messages/received", st.messages_received),
            ("messages/sent", st.messages_sent),
            ("bytes/received", st.bytes_received),
            ("bytes/sent", st.bytes_sent),
        ];
        for (load, (name, total)) in self.sys.loads.iter_mut().zip(totals) {
            load.update(total, secs);
            for (avg, (_, suffix)) in load.avg.iter().zip(LOAD_WINDOWS) {
                let mut v = String::new();
                let _ = write!(v, "{avg:.2}");
                out.push((format!("load/{name}/{suffix}"), v));
            }
        }
        for (topic, _) in &mut out {
            topic.insert_str(0, "$SYS/broker/");
        }
        // Messages each session lost to its queue bound (see `flow.rs`),
        // for those that lost any; `+`, `#` and NUL in a client id (not
        // allowed in a topic name) are written `_`.
        for c in &st.dropped_per_client {
            let id: String = c
                .client_id
                .chars()
                .map(|ch| {
                    if matches!(ch, '+' | '#' | '\0') {
                        '_'
                    } else {
                        ch
                    }
                })
                .collect();
            out.push((
                format!("{CLIENT_PREFIX}{id}/dropped"),
                c.dropped.to_string(),
            ));
        }
        out
    }
}
