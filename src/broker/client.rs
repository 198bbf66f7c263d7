//! The in-process client: publish and subscribe from the application, no
//! socket involved.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError as ChanTimeout, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::Waker;

use super::{ClientError, Message, RecvTimeoutError, TryRecvError};
use crate::Limits;
use crate::codec::{ProtocolVersion, QoS, check_utf8};
use crate::net::local::mailbox::{Empty, Mailbox};
use crate::net::local::{LocalRef, Open, Request};
use crate::topic;

/// How long a request waits for the broker thread's answer. The loop
/// answers within one turn; this only guards against a loop that is gone.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest MQTT string.
const MAX_STRING: usize = 65_535;

/// Room kept in a client id for the suffix of its subscriptions' ids
/// (`.sub` and up to ten digits).
pub(crate) const SUB_SUFFIX_ROOM: usize = 14;

/// What clients, subscriptions and the handle share: the way to the loop.
pub(crate) struct Shared {
    pub tx: Sender<Request>,
    pub waker: Arc<Waker>,
    pub limits: Limits,
}

impl Shared {
    /// Sends `request` and wakes the loop.
    pub(crate) fn send(&self, request: Request) -> Result<(), ClientError> {
        self.tx.send(request).map_err(|_| ClientError::NotRunning)?;
        self.waker.wake().map_err(|_| ClientError::NotRunning)
    }

    /// Waits for the answer to a request.
    pub(crate) fn wait<T>(rx: &Receiver<Result<T, ClientError>>) -> Result<T, ClientError> {
        match rx.recv_timeout(REQUEST_TIMEOUT) {
            Ok(r) => r,
            Err(ChanTimeout::Timeout) => Err(ClientError::Timeout),
            // The loop dropped the request: it stopped meanwhile.
            Err(ChanTimeout::Disconnected) => Err(ClientError::NotRunning),
        }
    }

    /// Opens a local connection and waits until it is connected (and
    /// subscribed).
    pub(crate) fn open(
        &self,
        client_id: String,
        subscribe: Option<(String, QoS, Arc<Mailbox>)>,
    ) -> Result<LocalRef, ClientError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Request::Open(Open {
            client_id,
            subscribe,
            reply,
        }))?;
        Self::wait(&rx)
    }

    /// Mailbox size for a subscription: the inflight window plus some room
    /// for bursts of QoS 0 messages.
    fn mailbox_capacity(&self) -> usize {
        usize::from(self.limits.max_inflight) + 128
    }
}

/// Owns one local connection: dropping it disconnects the connection.
struct Link {
    conn: LocalRef,
    shared: Arc<Shared>,
}

impl Drop for Link {
    fn drop(&mut self) {
        // Fails only when the loop is gone, and then so is the connection.
        let _ = self.shared.send(Request::Close(self.conn));
    }
}

/// An in-process MQTT client, from [`Handle::client`](super::Handle::client).
///
/// It behaves like a network client speaking MQTT 5.0 with a clean start
/// and no session expiry: its messages reach network and in-process subscribers alike,
/// retained messages are stored, QoS is honoured. It is `Send + Sync`: share
/// it between threads by reference or in an `Arc`.
///
/// The client is one connection to the broker, used for publishing; each
/// [`Subscription`] is a connection of its own (client id
/// `<client id>.sub<n>`), so a subscription nobody reads holds back only its
/// own messages, and it lives on after the client is dropped. Dropping the
/// client disconnects its publishing connection.
pub struct Client {
    client_id: String,
    link: Link,
    next_sub: AtomicU32,
}

impl Client {
    pub(crate) fn connect(shared: Arc<Shared>, client_id: &str) -> Result<Client, ClientError> {
        let conn = shared.open(client_id.to_owned(), None)?;
        Ok(Client {
            client_id: client_id.to_owned(),
            link: Link { conn, shared },
            next_sub: AtomicU32::new(0),
        })
    }

    /// The client id given to [`Handle::client`](super::Handle::client)
    /// (empty when the broker assigned one).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn limits(&self) -> &Limits {
        &self.link.shared.limits
    }

    /// Publishes a message. Returns once the broker has taken it: it has
    /// been routed to every matching subscriber (and stored, if `retain`),
    /// which is as far as a QoS 1 or 2 acknowledgement goes.
    ///
    /// # Errors
    /// [`ClientError::InvalidTopic`] for a topic that is empty, holds a
    /// wildcard or U+0000, or exceeds `max_topic_len`/`max_topic_levels`;
    /// [`ClientError::TooLarge`] past `max_packet_size`; both leave the
    /// client working. [`ClientError::Disconnected`] or
    /// [`ClientError::NotRunning`] when the connection or the broker is gone.
    ///
    /// ```
    /// use boxmq::{Broker, QoS};
    /// let mut broker = Broker::builder().port(0).build();
    /// let handle = broker.start()?;
    /// let client = handle.client("app")?;
    /// client.publish("display/brightness", b"80", QoS::AtLeastOnce, true)?;
    /// assert!(client.publish("display/#", b"80", QoS::AtMostOnce, false).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(
        &self,
        topic: &str,
        payload: impl AsRef<[u8]>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), ClientError> {
        self.publish_message(
            Message::new(topic, payload.as_ref())
                .with_qos(qos)
                .with_retain(retain),
        )
    }

    /// Publishes `message` with its MQTT 5.0 properties (User Properties,
    /// Content Type, Response Topic, Correlation Data, Payload Format
    /// Indicator, Message Expiry Interval), as a 5.0 network client would.
    /// Returns as [`Client::publish`] does.
    ///
    /// # Errors
    /// As [`Client::publish`], and [`ClientError::InvalidProperty`] for a
    /// property the broker would refuse (nothing is sent then).
    ///
    /// ```
    /// use boxmq::{Broker, Message, QoS};
    /// use std::time::Duration;
    /// let mut broker = Broker::builder().port(0).build();
    /// let handle = broker.start()?;
    /// let client = handle.client("app")?;
    /// let sub = client.subscribe("dash/cmd", QoS::AtLeastOnce)?;
    /// client.publish_message(
    ///     Message::new("dash/cmd", "reboot")
    ///         .with_qos(QoS::AtLeastOnce)
    ///         .with_user_property("origin", "display"),
    /// )?;
    /// let m = sub.recv_timeout(Duration::from_secs(5))?;
    /// assert_eq!(m.user_properties, [("origin".to_owned(), "display".to_owned())]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_message(&self, message: Message) -> Result<(), ClientError> {
        let limits = self.limits();
        check_topic(&message.topic, limits).map_err(|reason| ClientError::InvalidTopic {
            topic: message.topic.clone(),
            reason,
        })?;
        let properties = message.properties()?;
        if let Some(t) = &message.response_topic {
            // [MQTT-3.3.2-14]: a topic name, no wildcards.
            check_topic(t, limits).map_err(|_| ClientError::InvalidProperty {
                property: "Response Topic",
                reason: "not a valid topic name",
            })?;
        }
        let size = message
            .as_publish(properties.as_properties(), None)
            .encoded_len(ProtocolVersion::V5)
            + if message.qos == QoS::AtMostOnce { 0 } else { 2 };
        let max = limits.max_packet_size as usize;
        if size > max {
            return Err(ClientError::TooLarge { size, max });
        }
        let (reply, rx) = mpsc::sync_channel(1);
        self.link.shared.send(Request::Publish {
            to: self.link.conn,
            message,
            reply,
        })?;
        Shared::wait(&rx)
    }

    /// Subscribes to `filter` with maximum QoS `qos`. Retained messages that
    /// match arrive first, then every matching publish, from the network or
    /// from this process. Dropping the [`Subscription`] unsubscribes.
    ///
    /// A shared subscription, `$share/<group>/<filter>`, takes its share of
    /// the matching messages with the group's other members, in-process or
    /// on the network, round robin among the connected ones; retained
    /// messages are not sent to it (MQTT 5.0 §4.8.2).
    ///
    /// # Errors
    /// [`ClientError::InvalidFilter`] for a malformed filter or share name
    /// (the client keeps working),
    /// [`ClientError::SubscriptionRefused`] when the broker refuses it,
    /// [`ClientError::NotRunning`] when the broker is gone.
    ///
    /// ```
    /// use boxmq::{Broker, QoS};
    /// use std::time::Duration;
    /// let mut broker = Broker::builder().port(0).build();
    /// let handle = broker.start()?;
    /// let client = handle.client("app")?;
    /// let sub = client.subscribe("sensors/+/temperature", QoS::AtLeastOnce)?;
    /// client.publish("sensors/kitchen/temperature", b"21.5", QoS::AtLeastOnce, false)?;
    /// let m = sub.recv_timeout(Duration::from_secs(5))?;
    /// assert_eq!((m.topic.as_str(), &m.payload[..]), ("sensors/kitchen/temperature", &b"21.5"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<Subscription, ClientError> {
        let limits = self.limits();
        let invalid = |reason| ClientError::InvalidFilter {
            filter: filter.to_owned(),
            reason,
        };
        let inner = match topic::parse_shared(filter).map_err(invalid)? {
            Some((group, inner)) => {
                check_utf8(group.as_bytes())
                    .map_err(|_| invalid(topic::TopicError::InvalidSharedSubscription))?;
                inner
            }
            None => filter,
        };
        check_filter(inner, limits).map_err(invalid)?;
        let shared = self.link.shared.clone();
        let mailbox = Arc::new(Mailbox::new(
            shared.mailbox_capacity(),
            shared.waker.clone(),
        ));
        let client_id = if self.client_id.is_empty() {
            String::new()
        } else {
            let n = self
                .next_sub
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(1);
            format!("{}.sub{n}", self.client_id)
        };
        let conn = shared.open(client_id, Some((filter.to_owned(), qos, mailbox.clone())))?;
        Ok(Subscription {
            filter: filter.to_owned(),
            mailbox,
            _link: Link { conn, shared },
        })
    }

    /// Subscribes like [`Client::subscribe`] and calls `callback` for every
    /// message, on a thread of its own (never on the broker thread, so the
    /// callback may take its time: messages wait in the bounded queue, then
    /// in the broker, as for a slow [`Subscription`] reader).
    ///
    /// The returned guard keeps the subscription: dropping it (or
    /// [`CallbackSubscription::unsubscribe`]) stops the callbacks and waits
    /// for the one running, if any, to return.
    ///
    /// # Errors
    /// As [`Client::subscribe`], and [`ClientError::Thread`] when the thread
    /// cannot be started.
    ///
    /// ```
    /// use boxmq::{Broker, QoS};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// let mut broker = Broker::builder().port(0).build();
    /// let handle = broker.start()?;
    /// let client = handle.client("app")?;
    /// let (tx, rx) = mpsc::channel();
    /// let _guard = client.subscribe_with("alarms/#", QoS::AtMostOnce, move |m| {
    ///     let _ = tx.send(m.topic);
    /// })?;
    /// client.publish("alarms/door", b"open", QoS::AtMostOnce, false)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(5))?, "alarms/door");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_with<F>(
        &self,
        filter: &str,
        qos: QoS,
        mut callback: F,
    ) -> Result<CallbackSubscription, ClientError>
    where
        F: FnMut(Message) + Send + 'static,
    {
        let sub = self.subscribe(filter, qos)?;
        let mailbox = sub.mailbox.clone();
        let thread = thread::Builder::new()
            .name("boxmq-callback".to_owned())
            .spawn(move || {
                for m in &sub {
                    callback(m);
                }
            })
            .map_err(|e| ClientError::Thread(e.to_string()))?;
        Ok(CallbackSubscription {
            mailbox,
            thread: Some(thread),
        })
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn check_topic(topic: &str, limits: &Limits) -> Result<(), topic::TopicError> {
    if topic.len() > MAX_STRING {
        return Err(topic::TopicError::TooLong);
    }
    topic::validate_topic_name(topic, limits.max_topic_len, limits.max_topic_levels)?;
    check_chars(topic)
}

fn check_filter(filter: &str, limits: &Limits) -> Result<(), topic::TopicError> {
    if filter.len() > MAX_STRING {
        return Err(topic::TopicError::TooLong);
    }
    topic::validate_topic_filter(filter, limits.max_topic_len, limits.max_topic_levels)?;
    check_chars(filter)
}

/// The broker's decoder refuses control characters in strings as
/// malformed (and would close the connection): refuse them here instead.
fn check_chars(s: &str) -> Result<(), topic::TopicError> {
    check_utf8(s.as_bytes())
        .map(|_| ())
        .map_err(|_| topic::TopicError::ControlCharacter)
}

/// The messages of one subscription, from [`Client::subscribe`].
///
/// Messages wait in a bounded queue (`max_inflight` + 128 messages). When
/// it is full the broker holds further messages back, under its own limits:
/// QoS 0 messages are dropped past `max_output_buffer`, QoS 1 and 2 wait in
/// the session queue up to `max_queued_messages` (drops are counted in
/// [`Stats::publish_dropped`](crate::core::Stats::publish_dropped)). A slow
/// reader never slows the broker or other subscribers.
///
/// The subscription ends when the broker stops or closes its connection;
/// the messages already queued can still be taken. Dropping it
/// unsubscribes. It can be read from several threads (`Sync`); each message
/// goes to one reader.
pub struct Subscription {
    filter: String,
    mailbox: Arc<Mailbox>,
    _link: Link,
}

impl Subscription {
    /// The topic filter subscribed to.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Waits for the next message. `None` once the subscription has ended
    /// and every message has been taken.
    pub fn recv(&self) -> Option<Message> {
        self.mailbox.take(true, None).ok()
    }

    /// Waits at most `timeout` for the next message.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] when none came in time,
    /// [`RecvTimeoutError::Closed`] once the subscription has ended and
    /// every message has been taken.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, RecvTimeoutError> {
        let deadline = Instant::now().checked_add(timeout);
        self.mailbox.take(true, deadline).map_err(|e| match e {
            Empty::NotYet => RecvTimeoutError::Timeout,
            Empty::Closed => RecvTimeoutError::Closed,
        })
    }

    /// The next message if one is waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when none is waiting, [`TryRecvError::Closed`]
    /// once the subscription has ended and every message has been taken.
    pub fn try_recv(&self) -> Result<Message, TryRecvError> {
        self.mailbox.take(false, None).map_err(|e| match e {
            Empty::NotYet => TryRecvError::Empty,
            Empty::Closed => TryRecvError::Closed,
        })
    }

    /// Messages waiting to be taken.
    pub fn pending(&self) -> usize {
        self.mailbox.len()
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("filter", &self.filter)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

/// Blocking iteration: each item is [`Subscription::recv`]'s; the iterator
/// ends when the subscription does.
impl Iterator for Subscription {
    type Item = Message;
    fn next(&mut self) -> Option<Message> {
        self.recv()
    }
}

/// Blocking iteration over a shared reference, as for the owned one.
impl Iterator for &Subscription {
    type Item = Message;
    fn next(&mut self) -> Option<Message> {
        self.recv()
    }
}

/// A subscription whose messages go to a callback, from
/// [`Client::subscribe_with`]. Dropping it unsubscribes.
#[must_use = "dropping the guard ends the subscription at once"]
pub struct CallbackSubscription {
    mailbox: Arc<Mailbox>,
    thread: Option<JoinHandle<()>>,
}

impl CallbackSubscription {
    /// Stops the callbacks: queued messages are dropped, a running callback
    /// is waited for (unless called from the callback itself), and the
    /// subscription goes.
    pub fn unsubscribe(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.mailbox.cancel();
        if let Some(t) = self.thread.take() {
            if t.thread().id() != thread::current().id() {
                // A callback that panicked has already ended its thread;
                // there is nothing more to do about it here.
                let _ = t.join();
            }
        }
    }
}

impl Drop for CallbackSubscription {
    fn drop(&mut self) {
        self.finish();
    }
}

impl std::fmt::Debug for CallbackSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSubscription")
            .finish_non_exhaustive()
    }
}
