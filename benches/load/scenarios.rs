//! The scenarios. Each sets up its clients (waiting for every CONNACK and
//! SUBACK before any load), runs a bounded load phase, drains for a bounded
//! time, and reports only what subscribers actually received.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use boxmq::codec::{Packet, QoS};

use crate::Opts;
use crate::mqtt::{self, button_id, button_of_topic, event_cnt, shelly_event};
use crate::net::{Handler, Net};
use crate::stats::{CpuMeter, Latencies, Report};

/// Time allowed for a setup phase (connecting, subscribing).
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed after the load for in-flight messages to arrive.
const DRAIN: Duration = Duration::from_secs(2);
/// Dashboard subscription of the Shelly scenarios.
const DASHBOARD_FILTER: &str = "shellies/+/input_event/0";

fn net() -> Result<Net, String> {
    Net::new().map_err(|e| format!("poll {e}"))
}

fn turn<H: Handler>(net: &mut Net, h: &mut H, timeout: Duration) -> Result<(), String> {
    net.turn(timeout, h).map_err(|e| format!("poll_failed {e}"))
}

fn per_sec(n: u64, d: Duration) -> String {
    format!("{:.0}", n as f64 / d.as_secs_f64().max(1e-9))
}

fn qos_n(q: QoS) -> u8 {
    q as u8
}

/// `ping`: one connect, one CONNACK.
pub fn ping(o: &Opts) -> Result<Report, String> {
    let mut net = net()?;
    let t = Instant::now();
    mqtt::connect_all(
        &mut net,
        o.addr,
        &["boxmq-load-ping".into()],
        60,
        false,
        Duration::from_secs(2),
    )?;
    let mut r = Report::new("ping", &o.broker);
    r.add(
        "connack_ms",
        format!("{:.3}", t.elapsed().as_secs_f64() * 1e3),
    );
    Ok(r)
}

// ----- press -----

/// The dashboard of the Shelly scenarios: matches each received event to its
/// send instant by (button, event_cnt); the payload stays Shelly-like.
#[derive(Default)]
struct Dashboard {
    id: usize,
    sent: HashMap<(usize, u32), Instant>,
    received: u64,
    unknown: u64,
    lat: Latencies,
    dashboard_closed: bool,
}

impl Dashboard {
    fn on_publish(&mut self, net: &mut Net, p: &boxmq::codec::Publish<'_>, now: Instant) {
        if let Some(pid) = p.packet_id {
            net.send(self.id, |out| mqtt::puback(out, pid));
        }
        let key = button_of_topic(p.topic).zip(event_cnt(p.payload));
        match key.and_then(|k| self.sent.remove(&k)) {
            Some(t0) => {
                self.received += 1;
                self.lat.push(now.saturating_duration_since(t0));
            }
            // Not ours, or a duplicate.
            None => self.unknown += 1,
        }
    }
}

struct Press {
    dash: Dashboard,
    qos: QoS,
    /// Connection -> (button, press start).
    slots: HashMap<usize, (usize, Instant)>,
    busy: Vec<bool>,
    cnt: Vec<u32>,
    completed: u64,
    failed: u64,
    connack_lat: Latencies,
    last_done: Instant,
}

impl Press {
    fn finish_publish(&mut self, net: &mut Net, id: usize, now: Instant) {
        if let Some((b, _)) = self.slots.remove(&id) {
            net.send(id, mqtt::disconnect);
            net.flush(id);
            net.close_after_flush(id);
            self.busy[b] = false;
            self.completed += 1;
            self.last_done = now;
        }
    }
}

impl Handler for Press {
    fn on_packet(&mut self, net: &mut Net, id: usize, p: &Packet<'_>, now: Instant) {
        if id == self.dash.id {
            if let Packet::Publish(p) = p {
                self.dash.on_publish(net, p, now);
            }
            return;
        }
        let Some(&(b, t0)) = self.slots.get(&id) else {
            return;
        };
        match p {
            Packet::Connack(c) if c.code == 0 => {
                self.connack_lat.push(now.saturating_duration_since(t0));
                self.cnt[b] += 1;
                let cnt = self.cnt[b];
                let topic = format!("shellies/{}/input_event/0", button_id(b));
                let payload = shelly_event(cnt);
                net.send(id, |out| {
                    mqtt::publish(out, &topic, payload.as_bytes(), self.qos, 1);
                });
                // The press starts at the TCP connect: that is what the
                // person holding the button waits for.
                self.dash.sent.insert((b, cnt), t0);
                if self.qos == QoS::AtMostOnce {
                    self.finish_publish(net, id, now);
                } else {
                    net.flush(id);
                }
            }
            Packet::Connack(_) => {
                self.slots.remove(&id);
                self.busy[b] = false;
                self.failed += 1;
                net.close(id);
            }
            Packet::PubResp(_) => self.finish_publish(net, id, now),
            _ => {}
        }
    }

    fn on_closed(&mut self, _net: &mut Net, id: usize) {
        if id == self.dash.id {
            self.dash.dashboard_closed = true;
        } else if let Some((b, _)) = self.slots.remove(&id) {
            self.busy[b] = false;
            self.failed += 1;
        }
    }
}

/// `press`: Shelly Button1 press cycles, `concurrency` in flight.
pub fn press(o: &Opts) -> Result<Report, String> {
    let mut net = net()?;
    let dash = mqtt::subscriber(
        &mut net,
        o.addr,
        "dashboard-press",
        DASHBOARD_FILTER,
        o.qos,
        SETUP_TIMEOUT,
    )?;
    // Four times as many buttons as presses in flight, so a button is never
    // pressed again before its previous cycle ended (no session takeover).
    let buttons = o.concurrency * 4;
    let mut h = Press {
        dash: Dashboard {
            id: dash,
            ..Dashboard::default()
        },
        qos: o.qos,
        slots: HashMap::new(),
        busy: vec![false; buttons],
        cnt: vec![0; buttons],
        completed: 0,
        failed: 0,
        connack_lat: Latencies::default(),
        last_done: Instant::now(),
    };
    let cpu = CpuMeter::start(o.pid);
    let t0 = Instant::now();
    let stop = t0 + o.duration;
    let mut started = 0usize;
    let mut next_button = 0usize;
    // Load: keep `concurrency` cycles in flight until the count or the time
    // is up.
    loop {
        let now = Instant::now();
        let more = started < o.presses && now < stop;
        if !more && h.slots.is_empty() {
            break;
        }
        if now > stop + SETUP_TIMEOUT {
            break;
        }
        // With --press-rate, no more cycles started than the rate allows.
        let allowed = if o.press_rate == 0 {
            usize::MAX
        } else {
            (now.saturating_duration_since(t0).as_secs_f64() * o.press_rate as f64) as usize + 1
        };
        while more && h.slots.len() < o.concurrency && started < o.presses.min(allowed) {
            let Some(b) = (0..buttons)
                .map(|k| (next_button + k) % buttons)
                .find(|&b| !h.busy[b])
            else {
                break;
            };
            next_button = (b + 1) % buttons;
            let id = match net.open(o.addr) {
                Ok(id) => id,
                Err(_) => {
                    h.failed += 1;
                    break;
                }
            };
            let client = button_id(b);
            net.send(id, |out| mqtt::connect(out, &client, 60, true));
            h.busy[b] = true;
            h.slots.insert(id, (b, Instant::now()));
            started += 1;
        }
        turn(&mut net, &mut h, Duration::from_millis(1))?;
    }
    let load_time = h.last_done.saturating_duration_since(t0);
    let mut r = Report::new("press", &o.broker);
    cpu.report(&mut r);
    if let Some(us) = cpu.broker_us() {
        let per = if h.completed == 0 {
            0.0
        } else {
            us as f64 / h.completed as f64
        };
        r.add("broker_cpu_us_per_cycle", format!("{per:.1}"));
    }
    let drain_end = Instant::now() + DRAIN;
    while !h.dash.sent.is_empty() && Instant::now() < drain_end && !h.dash.dashboard_closed {
        turn(&mut net, &mut h, Duration::from_millis(5))?;
    }
    let lost = h.dash.sent.len();
    r.add("qos", qos_n(o.qos))
        .add("concurrency", o.concurrency)
        .add("cycles", h.completed)
        .add("failed", h.failed)
        .add("seconds", format!("{:.3}", load_time.as_secs_f64()))
        .add("cycles_per_s", per_sec(h.completed, load_time))
        .add("received", h.dash.received)
        .add("lost", lost)
        .latency("", &mut h.dash.lat)
        .latency("connack_", &mut h.connack_lat);
    Ok(r)
}

// ----- fanin -----

struct Fanin {
    dash: Dashboard,
    /// Unacknowledged QoS 1 PUBLISHes of all buttons.
    outstanding: u64,
    max_outstanding: u64,
    acked: u64,
    closed: u64,
}

impl Handler for Fanin {
    fn on_packet(&mut self, net: &mut Net, id: usize, p: &Packet<'_>, now: Instant) {
        match p {
            Packet::Publish(p) if id == self.dash.id => self.dash.on_publish(net, p, now),
            Packet::PubResp(_) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.acked += 1;
            }
            _ => {}
        }
    }
    fn on_closed(&mut self, _net: &mut Net, id: usize) {
        if id == self.dash.id {
            self.dash.dashboard_closed = true;
        }
        self.closed += 1;
    }
}

/// `fanin`: `clients` connected buttons publish at `rate` msg/s in total.
pub fn fanin(o: &Opts) -> Result<Report, String> {
    let mut net = net()?;
    let dash = mqtt::subscriber(
        &mut net,
        o.addr,
        "dashboard-fanin",
        DASHBOARD_FILTER,
        o.qos,
        SETUP_TIMEOUT,
    )?;
    let ids: Vec<String> = (0..o.clients).map(button_id).collect();
    let t_connect = Instant::now();
    let buttons = mqtt::connect_all(&mut net, o.addr, &ids, 60, true, SETUP_TIMEOUT)?;
    let connect_time = t_connect.elapsed();
    let topics: Vec<String> = ids
        .iter()
        .map(|id| format!("shellies/{id}/input_event/0"))
        .collect();
    let mut cnt = vec![0u32; o.clients];
    let mut pid = vec![0u16; o.clients];
    let mut h = Fanin {
        dash: Dashboard {
            id: dash,
            ..Dashboard::default()
        },
        outstanding: 0,
        max_outstanding: 0,
        acked: 0,
        closed: 0,
    };
    let total = (o.rate as f64 * o.duration.as_secs_f64()).round() as u64;
    let mut sent = 0u64;
    let mut next = 0usize;
    let cpu = CpuMeter::start(o.pid);
    let t0 = Instant::now();
    while sent < total {
        let elapsed = t0.elapsed();
        if elapsed > o.duration + DRAIN {
            break; // could not keep up: what was not sent is reported
        }
        let due = ((o.rate as f64 * elapsed.as_secs_f64()) as u64).min(total);
        while sent < due {
            let b = next;
            next = (next + 1) % o.clients;
            cnt[b] += 1;
            pid[b] = pid[b].wrapping_add(1).max(1);
            let id = buttons[b];
            let payload = shelly_event(cnt[b]);
            let (topic, qos, p) = (&topics[b], o.qos, pid[b]);
            net.send(id, |out| {
                mqtt::publish(out, topic, payload.as_bytes(), qos, p)
            });
            h.dash.sent.insert((b, cnt[b]), Instant::now());
            net.flush(id);
            sent += 1;
            if o.qos != QoS::AtMostOnce {
                h.outstanding += 1;
                h.max_outstanding = h.max_outstanding.max(h.outstanding);
            }
        }
        turn(&mut net, &mut h, Duration::from_micros(500))?;
    }
    let load_time = t0.elapsed();
    let mut r = Report::new("fanin", &o.broker);
    cpu.report(&mut r);
    let drain_end = Instant::now() + DRAIN;
    while (!h.dash.sent.is_empty() || h.outstanding > 0)
        && Instant::now() < drain_end
        && !h.dash.dashboard_closed
    {
        turn(&mut net, &mut h, Duration::from_millis(5))?;
    }
    let lost = h.dash.sent.len();
    r.add("clients", o.clients)
        .add("qos", qos_n(o.qos))
        .add("rate", o.rate)
        .add("connect_s", format!("{:.3}", connect_time.as_secs_f64()))
        .add("sent", sent)
        .add("sent_per_s", per_sec(sent, load_time))
        .add("received", h.dash.received)
        .add("lost", lost)
        .add("dup_or_unknown", h.dash.unknown)
        .add("max_unacked", h.max_outstanding)
        .add("closed", h.closed)
        .latency("", &mut h.dash.lat);
    net.close_all();
    Ok(r)
}

// ----- throughput and fanout -----

/// Publishers that keep the pipe full (QoS 0) or keep `window` PUBLISHes
/// unacknowledged (QoS 1), and subscribers that count what they receive
/// inside the measured window.
struct Pipe {
    qos: QoS,
    window: usize,
    payload_len: usize,
    /// Publisher connection -> index; frames are prebuilt per publisher.
    pubs: HashMap<usize, usize>,
    frames: Vec<Vec<u8>>,
    next_pid: Vec<u16>,
    unacked: Vec<usize>,
    subs: HashMap<usize, ()>,
    measuring: bool,
    stopped: bool,
    sent: u64,
    sent_in_window: u64,
    acked: u64,
    received: u64,
    received_in_window: u64,
    closed: u64,
    /// QoS 1: when each unacknowledged PUBLISH of each publisher was
    /// queued (brokers acknowledge in order), and the PUBACK latencies.
    sent_at: Vec<std::collections::VecDeque<Instant>>,
    ack_latency: Latencies,
    /// Publish-to-delivery latencies, from the send time each publisher
    /// writes into the first 8 bytes of the payload (microseconds since
    /// `epoch`); payloads shorter than that carry none.
    epoch: Instant,
    delivery_latency: Latencies,
}

/// QoS 0 publishers keep about this much queued in user space per turn.
const QOS0_QUEUE: usize = 32 * 1024;

impl Pipe {
    /// Appends one PUBLISH of publisher `k` to `out`.
    fn push_frame(&mut self, k: usize, out: &mut Vec<u8>) {
        let f = &self.frames[k];
        out.extend_from_slice(f);
        if self.qos != QoS::AtMostOnce {
            // Patch the packet id (last two bytes before the payload).
            let pid = self.next_pid[k];
            self.next_pid[k] = pid.wrapping_add(1).max(1);
            let at = out.len() - f.len() + pid_offset(f);
            out[at..at + 2].copy_from_slice(&pid.to_be_bytes());
            self.unacked[k] += 1;
            self.sent_at[k].push_back(Instant::now());
        }
        if self.payload_len >= 8 {
            let micros = self.epoch.elapsed().as_micros() as u64;
            let at = out.len() - self.payload_len;
            out[at..at + 8].copy_from_slice(&micros.to_be_bytes());
        }
        self.sent += 1;
        if self.measuring {
            self.sent_in_window += 1;
        }
    }

    /// Tops up publisher `id` (index `k`): QoS 0 keeps about
    /// `QOS0_QUEUE` bytes queued, QoS 1 keeps `window` PUBLISHes unacknowledged.
    fn top_up(&mut self, net: &mut Net, id: usize, k: usize) {
        if self.stopped {
            return;
        }
        if self.qos == QoS::AtMostOnce {
            let mut queued = net.pending(id);
            if queued < QOS0_QUEUE {
                net.send(id, |out| {
                    while queued < QOS0_QUEUE {
                        let before = out.len();
                        self.push_frame(k, out);
                        queued += out.len() - before;
                    }
                });
            }
        } else if self.unacked[k] < self.window {
            net.send(id, |out| {
                while self.unacked[k] < self.window {
                    self.push_frame(k, out);
                }
            });
        }
    }
}

/// Offset of the packet id in a QoS 1 PUBLISH frame: after the fixed
/// header and the topic.
fn pid_offset(frame: &[u8]) -> usize {
    let mut i = 1;
    while frame[i] & 0x80 != 0 {
        i += 1;
    }
    let topic_len = usize::from(u16::from_be_bytes([frame[i + 1], frame[i + 2]]));
    i + 3 + topic_len
}

impl Handler for Pipe {
    fn on_packet(&mut self, net: &mut Net, id: usize, p: &Packet<'_>, _now: Instant) {
        match p {
            Packet::Publish(p) => {
                if let Some(pid) = p.packet_id {
                    net.send(id, |out| mqtt::puback(out, pid));
                }
                if self.subs.contains_key(&id) {
                    self.received += 1;
                    if self.measuring {
                        self.received_in_window += 1;
                        if let Some(stamp) = p.payload.get(..8) {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(stamp);
                            let sent = Duration::from_micros(u64::from_be_bytes(b));
                            let now = self.epoch.elapsed();
                            self.delivery_latency.push(now.saturating_sub(sent));
                        }
                    }
                }
            }
            Packet::PubResp(_) => {
                if let Some(&k) = self.pubs.get(&id) {
                    self.unacked[k] = self.unacked[k].saturating_sub(1);
                    if let Some(t) = self.sent_at[k].pop_front() {
                        if self.measuring {
                            self.ack_latency.push(t.elapsed());
                        }
                    }
                    self.acked += 1;
                    self.top_up(net, id, k);
                }
            }
            _ => {}
        }
    }
    fn on_closed(&mut self, _net: &mut Net, _id: usize) {
        self.closed += 1;
    }
}

/// Shared body of `throughput` (P publishers on bench/<i>, one subscriber
/// on bench/#) and `fanout` (one publisher, S subscribers on one topic).
fn pipe(
    o: &Opts,
    scenario: &str,
    publishers: usize,
    subscribers: usize,
    filter: &str,
    topic_of: impl Fn(usize) -> String,
) -> Result<Report, String> {
    let mut net = net()?;
    let sub_ids: Vec<String> = (0..subscribers).map(|i| format!("sub-{i}")).collect();
    let subs = mqtt::connect_all_session(
        &mut net,
        o.addr,
        &sub_ids,
        60,
        false,
        !o.persistent,
        SETUP_TIMEOUT,
    )?;
    mqtt::subscribe_all(&mut net, &subs, filter, o.qos, SETUP_TIMEOUT)?;
    // Stuck subscribers: blocking sockets, subscribed, then never read
    // (kept open until the end of the run).
    let stuck = (0..o.stuck)
        .map(|i| stuck_subscriber(o, &format!("stuck-{i}"), filter))
        .collect::<Result<Vec<_>, String>>()?;
    let pub_ids: Vec<String> = (0..publishers).map(|i| format!("pub-{i}")).collect();
    let pubs = mqtt::connect_all(&mut net, o.addr, &pub_ids, 60, false, SETUP_TIMEOUT)?;
    let payload = vec![b'x'; o.payload];
    let frames = (0..publishers)
        .map(|k| {
            let mut f = Vec::new();
            mqtt::publish(&mut f, &topic_of(k), &payload, o.qos, 1);
            f
        })
        .collect();
    let mut h = Pipe {
        qos: o.qos,
        window: o.window,
        payload_len: o.payload,
        pubs: pubs.iter().enumerate().map(|(k, &id)| (id, k)).collect(),
        frames,
        next_pid: vec![1; publishers],
        unacked: vec![0; publishers],
        subs: subs.iter().map(|&id| (id, ())).collect(),
        measuring: false,
        stopped: false,
        sent: 0,
        sent_in_window: 0,
        acked: 0,
        received: 0,
        received_in_window: 0,
        closed: 0,
        sent_at: vec![std::collections::VecDeque::new(); publishers],
        ack_latency: Latencies::default(),
        epoch: Instant::now(),
        delivery_latency: Latencies::default(),
    };
    let t0 = Instant::now();
    let start = t0 + o.warmup;
    let end = start + o.duration;
    let mut window_start = None;
    let mut cpu = None;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !h.measuring && now >= start {
            h.measuring = true;
            window_start = Some(now);
            cpu = Some(CpuMeter::start(o.pid));
        }
        if h.closed > 0 {
            return Err(format!("connection_closed count={}", h.closed));
        }
        for (k, &id) in pubs.iter().enumerate() {
            // Keep writing until the socket is full: its WRITABLE edge then
            // wakes the loop, so a publisher never idles while the kernel
            // would take more (bounded, so subscribers still get read).
            for _ in 0..16 {
                h.top_up(&mut net, id, k);
                net.flush(id);
                if net.pending(id) > 0 || h.qos != QoS::AtMostOnce {
                    break;
                }
            }
        }
        turn(&mut net, &mut h, Duration::from_millis(1))?;
    }
    h.measuring = false;
    h.stopped = true;
    let window = window_start.map_or(o.duration, |s| s.elapsed());
    let mut r = Report::new(scenario, &o.broker);
    if let Some(cpu) = cpu {
        cpu.report(&mut r);
    }
    let received_at_end = h.received;
    let acked_at_end = h.acked;
    // Drain: bounded wait for what the broker still holds.
    let drain_end = Instant::now() + DRAIN;
    let mut last = (h.received, Instant::now());
    while Instant::now() < drain_end {
        turn(&mut net, &mut h, Duration::from_millis(5))?;
        if h.received != last.0 {
            last = (h.received, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(300) {
            break;
        }
    }
    r.add("publishers", publishers)
        .add("subscribers", subscribers)
        .add("qos", qos_n(o.qos))
        .add("payload", o.payload)
        .add("window_s", format!("{:.3}", window.as_secs_f64()))
        .add("sent_in_window", h.sent_in_window)
        .add("delivered", h.received_in_window)
        .add("delivered_per_s", per_sec(h.received_in_window, window))
        .add("sent_total", h.sent)
        .add("received_total", h.received);
    if o.qos != QoS::AtMostOnce {
        // Acknowledged by the broker but not yet at the subscribers when the
        // window closed: the broker's QoS 1 backlog.
        let backlog = (acked_at_end * subscribers as u64).saturating_sub(received_at_end);
        r.add("backlog_at_end", backlog).add(
            "lost_after_drain",
            (h.acked * subscribers as u64).saturating_sub(h.received),
        );
        r.add("acked_total", h.acked)
            .add("stuck_subscribers", stuck.len());
        r.latency("ack_", &mut h.ack_latency);
    }
    r.latency("delivery_", &mut h.delivery_latency);
    net.close_all();
    drop(stuck);
    Ok(r)
}

/// A subscriber on `filter` that has its CONNACK and SUBACK and will read
/// nothing more: the broker's output to it backs up into the kernel's
/// buffers and then into the broker.
fn stuck_subscriber(o: &Opts, id: &str, filter: &str) -> Result<std::net::TcpStream, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(o.addr).map_err(|e| format!("stuck connect {e}"))?;
    s.set_read_timeout(Some(SETUP_TIMEOUT))
        .map_err(|e| format!("stuck {e}"))?;
    let mut out = Vec::new();
    mqtt::connect(&mut out, id, 600, false);
    mqtt::subscribe(&mut out, 1, filter, o.qos);
    s.write_all(&out).map_err(|e| format!("stuck write {e}"))?;
    // CONNACK (4 bytes) and SUBACK (5 bytes for one filter).
    let mut answers = [0u8; 9];
    s.read_exact(&mut answers)
        .map_err(|e| format!("stuck subscriber got no SUBACK: {e}"))?;
    if answers[0] != 0x20 || answers[4] != 0x90 {
        return Err(format!(
            "stuck subscriber: unexpected answers {answers:02x?}"
        ));
    }
    Ok(s)
}

/// `throughput`: P publishers to bench/<i>, one subscriber on bench/#.
pub fn throughput(o: &Opts) -> Result<Report, String> {
    pipe(o, "throughput", o.publishers, 1, "bench/#", |k| {
        format!("bench/{k}")
    })
}

/// `fanout`: one publisher, S subscribers on bench/fanout.
pub fn fanout(o: &Opts) -> Result<Report, String> {
    pipe(o, "fanout", 1, o.subscribers, "bench/fanout", |_| {
        "bench/fanout".to_owned()
    })
}

// ----- idle -----

fn rss_kib(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read_status pid={pid} {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no_VmRSS".into())
}

/// `idle`: N CONNECTed idle clients; the broker's RSS per connection.
pub fn idle(o: &Opts) -> Result<Report, String> {
    let pid = o.pid.ok_or("idle needs --pid")?;
    let before = rss_kib(pid)?;
    let mut net = net()?;
    let ids: Vec<String> = (0..o.clients).map(button_id).collect();
    let t = Instant::now();
    let conns = mqtt::connect_all(&mut net, o.addr, &ids, 60, true, SETUP_TIMEOUT)?;
    let connect_time = t.elapsed();
    // Let the broker settle (lazy frees, buffers shrinking).
    struct Nop(u64);
    impl Handler for Nop {
        fn on_packet(&mut self, _: &mut Net, _: usize, _: &Packet<'_>, _: Instant) {}
        fn on_closed(&mut self, _: &mut Net, _: usize) {
            self.0 += 1;
        }
    }
    let mut nop = Nop(0);
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        turn(&mut net, &mut nop, Duration::from_millis(50))?;
    }
    let after = rss_kib(pid)?;
    let still_open = conns.iter().filter(|&&c| net.is_open(c)).count();
    net.close_all();
    let per_conn = (after.saturating_sub(before) * 1024) as f64 / o.clients as f64;
    let mut r = Report::new("idle", &o.broker);
    r.add("clients", o.clients)
        .add("open", still_open)
        .add("connect_s", format!("{:.3}", connect_time.as_secs_f64()))
        .add("rss_before_kib", before)
        .add("rss_after_kib", after)
        .add("bytes_per_conn", format!("{per_conn:.0}"));
    Ok(r)
}
