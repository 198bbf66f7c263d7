/*
 * boxmq.h: the C ABI of boxmq, a small MQTT broker to embed in a program.
 *
 * Link with libboxmq.a (and, on Linux, -lpthread -ldl -lm) or libboxmq.so,
 * built by `cargo build --profile release-lib -p boxmq-ffi` into
 * target/release-lib/. Written by hand; tests/ffi.rs checks that every
 * function of ffi/src is declared here, that every one declared here
 * exists, that the constants agree, and compiles and runs
 * ffi/tests/abi.c against this header and the static library.
 *
 * Conventions
 *
 *  - Functions returning int return BOXMQ_OK (0) or a value >= 0 on
 *    success and a negative BOXMQ_ERR_* code on failure. After a failure,
 *    boxmq_last_error() gives a message for the calling thread.
 *  - Every object made by a boxmq_*_new / subscribe function is freed by
 *    its boxmq_*_free function; freeing NULL does nothing. Objects may be
 *    freed in any order: a client or subscription whose broker is gone
 *    answers BOXMQ_ERR_NOT_RUNNING (a subscription: BOXMQ_CLOSED).
 *  - Strings passed in are NUL-terminated UTF-8 and are only read during
 *    the call. Strings returned are owned by the library.
 *  - Thread safety: unless a function says otherwise, it may be called
 *    from any thread, also concurrently on the same object. A *_free
 *    function must not run concurrently with any other call on the same
 *    object (and the object must not be used after it).
 *  - Nothing unwinds into the caller: an internal panic (a bug) is caught
 *    and returned as BOXMQ_ERR_PANIC. Build with the release-lib profile
 *    (the release profile aborts on panic instead).
 *  - The broker itself is single-threaded. boxmq_broker_start runs it on
 *    a thread of its own (named "boxmq"); every call here talks to it
 *    through a channel, and none of your code ever runs on that thread.
 *    Your callbacks run on "boxmq-callback" (subscriptions) and
 *    "boxmq-hook" (application hooks) threads; see each function.
 */
#ifndef BOXMQ_H
#define BOXMQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Return codes ---------------------------------------------------- */

/** Success. */
#define BOXMQ_OK 0
/** boxmq_subscription_next: no message within the timeout (not an error). */
#define BOXMQ_TIMEOUT 1
/** boxmq_subscription_next: the subscription has ended (the broker stopped
 *  or closed it) and every message has been taken (not an error). */
#define BOXMQ_CLOSED 2
/** A NULL pointer, a string that is not UTF-8, a QoS other than 0, 1, 2,
 *  a listener index out of range, or the wrong kind of subscription. */
#define BOXMQ_ERR_INVALID_ARGUMENT (-1)
/** The config text is invalid (the message names the line), or a password
 *  or ACL file it names cannot be read. */
#define BOXMQ_ERR_CONFIG (-2)
/** A listener could not be bound (port in use, permission denied). */
#define BOXMQ_ERR_BIND (-3)
/** The event loop could not be set up, or failed. */
#define BOXMQ_ERR_IO (-4)
/** The persistence directory cannot be used (or another broker holds it). */
#define BOXMQ_ERR_PERSISTENCE (-5)
/** boxmq_broker_start on a running broker. */
#define BOXMQ_ERR_ALREADY_RUNNING (-6)
/** The broker is not running (never started, stopped, or failed). */
#define BOXMQ_ERR_NOT_RUNNING (-7)
/** The broker thread did not answer in time (10 s). */
#define BOXMQ_ERR_TIMEOUT (-8)
/** The broker refused the in-process client (e.g. max_sessions reached)
 *  or the subscription, or the client id cannot be used. */
#define BOXMQ_ERR_REFUSED (-9)
/** Invalid topic name or filter (empty, wildcard in a topic name,
 *  misplaced wildcard, U+0000, too long, too many levels, a malformed
 *  $share/ name). The client keeps working. */
#define BOXMQ_ERR_INVALID_TOPIC (-10)
/** The message would make a packet larger than max_packet_size. */
#define BOXMQ_ERR_TOO_LARGE (-11)
/** The broker closed this client's connection: a network client took
 *  its client id over, or the broker is stopping. */
#define BOXMQ_ERR_DISCONNECTED (-12)
/** Too many QoS 2 messages of this client await completion; take
 *  messages from its subscriptions, then try again. */
#define BOXMQ_ERR_BUSY (-13)
/** A thread (for a callback subscription) could not be started. */
#define BOXMQ_ERR_THREAD (-14)
/** A bug in boxmq: a panic was caught at the C boundary. */
#define BOXMQ_ERR_PANIC (-15)

/** The message of the last call on the calling thread that returned a
 *  negative code ("" if none did). Owned by the library, valid until the
 *  next failing boxmq call on the same thread. Thread-local: safe from any
 *  thread. Never NULL. */
const char *boxmq_last_error(void);

/** The library's version, such as "0.1.0". A static string. */
const char *boxmq_version(void);

/* ---- The broker ------------------------------------------------------ */

/** Broker states, as boxmq_broker_state returns them. */
#define BOXMQ_STATE_INIT 0    /* built, not started */
#define BOXMQ_STATE_RUNNING 1 /* listeners bound, event loop running */
#define BOXMQ_STATE_STOPPED 2 /* stopped by boxmq_broker_stop or _free */
#define BOXMQ_STATE_FAILED 3  /* could not start or the loop failed */

/** A broker. Opaque. */
typedef struct boxmq_broker boxmq_broker;

/** Creates a broker from config text: the lines of a boxmq config file,
 *  one directive per line, such as
 *  "listener 1883 127.0.0.1\npersistence false" (see README.md, "Config
 *  file"; port 0 lets the system pick a free port). NULL or "" means the
 *  defaults: 127.0.0.1:1883, anonymous access. An embedded broker keeps
 *  nothing on disk unless the text says "persistence true". On success
 *  *out is a broker in state Init.
 *  Errors: BOXMQ_ERR_CONFIG (the message says "config:LINE: ..."),
 *  BOXMQ_ERR_INVALID_ARGUMENT. */
int boxmq_broker_new(const char *config, boxmq_broker **out);

/** Binds the listeners on the calling thread, then runs the broker on a
 *  thread of its own. Returns when it is Running. A broker that stopped or
 *  failed may be started again.
 *  Errors: BOXMQ_ERR_BIND (the state becomes Failed with the reason),
 *  BOXMQ_ERR_CONFIG, BOXMQ_ERR_PERSISTENCE, BOXMQ_ERR_IO,
 *  BOXMQ_ERR_ALREADY_RUNNING. */
int boxmq_broker_start(const boxmq_broker *broker);

/** Stops the broker gracefully: every client is disconnected, in-process
 *  subscriptions end (their next returns BOXMQ_CLOSED), the listeners are
 *  closed. Waits at most 10 s for the broker thread. Stopping a broker
 *  that is not running does nothing and returns BOXMQ_OK.
 *  Callable from any thread, also from a subscription callback.
 *  Errors: BOXMQ_ERR_TIMEOUT. */
int boxmq_broker_stop(const boxmq_broker *broker);

/** The state now, a BOXMQ_STATE_* value (>= 0), or a negative error code.
 *  If reason is not NULL, the reason of a Failed state ("" otherwise),
 *  such as "cannot listen on 127.0.0.1:1883: Address already in use
 *  (os error 98)", is copied into it as snprintf would (truncated to
 *  reason_len - 1 bytes and NUL-terminated). */
int boxmq_broker_state(const boxmq_broker *broker, char *reason, size_t reason_len);

/** "Init", "Running", "Stopped", "Failed" for a BOXMQ_STATE_* value,
 *  "unknown" otherwise. A static string. */
const char *boxmq_state_name(int state);

/** The number of listeners of the running broker, or a negative error
 *  (BOXMQ_ERR_NOT_RUNNING). */
int boxmq_broker_address_count(const boxmq_broker *broker);

/** Copies the bound address of listener index (0-based, in config order),
 *  such as "127.0.0.1:1883" or "[::1]:1883", into buf as snprintf would;
 *  returns the address's full length (excluding the NUL; buf may be NULL
 *  to learn it), or a negative error: BOXMQ_ERR_NOT_RUNNING,
 *  BOXMQ_ERR_INVALID_ARGUMENT (no such listener). */
int boxmq_broker_address(const boxmq_broker *broker, size_t index, char *buf, size_t len);

/** The bound port of listener index (the real one when the config said
 *  0), or a negative error as for boxmq_broker_address. */
int boxmq_broker_port(const boxmq_broker *broker, size_t index);

/** The broker's counters. Plain data; all fields are counts since start
 *  or current sizes. */
typedef struct boxmq_stats {
    uint64_t clients_connected; /* connections past CONNECT, attached now */
    uint64_t clients_maximum;   /* most clients connected at once */
    uint64_t sessions;          /* sessions held (connected and offline) */
    uint64_t messages_received; /* PUBLISH packets received (network and in-process) */
    uint64_t messages_sent;     /* PUBLISH packets sent to clients */
    uint64_t bytes_received;    /* bytes received from all connections */
    uint64_t bytes_sent;        /* bytes handed to all connections */
    uint64_t publish_dropped;   /* messages dropped at a limit */
    uint64_t retained_refused;  /* retained messages not stored (limits) */
    uint64_t retained_messages; /* retained messages held */
    uint64_t retained_bytes;    /* topic and payload bytes of those */
    uint64_t subscriptions;     /* subscriptions over all sessions */
} boxmq_stats;

/** Fills *out with the counters now (in-process clients and every
 *  subscription count as clients and sessions).
 *  Errors: BOXMQ_ERR_NOT_RUNNING, BOXMQ_ERR_TIMEOUT. */
int boxmq_broker_stats(const boxmq_broker *broker, boxmq_stats *out);

/** Stops the broker as boxmq_broker_stop does, and frees it. Must not run
 *  concurrently with other calls on this broker. Clients and
 *  subscriptions may outlive it (and then report that it is gone). */
void boxmq_broker_free(boxmq_broker *broker);

/* ---- Application hooks and events ------------------------------------ */

/** What a hook answers. Any other value refuses. */
#define BOXMQ_ACCEPT 0
/** Refuse: CONNECT gets CONNACK 0x05 (3.1.1) / 0x87 (5.0); a PUBLISH is
 *  not routed (QoS 1/2 still acknowledged, 5.0 with 0x87); a filter gets
 *  0x80 / 0x87 in the SUBACK. */
#define BOXMQ_REFUSE 1
/** on_connect only: bad user name or password, CONNACK 0x04 / 0x86. */
#define BOXMQ_BAD_CREDENTIALS 2

/** What on_connect sees of a CONNECT; lent for the call (copy what you
 *  keep). */
typedef struct boxmq_connect_request {
    const char *client_id;  /* as sent; "" when the broker will assign one */
    const char *username;   /* NULL if none */
    const uint8_t *password; /* NULL if none */
    size_t password_len;
    const char *address;    /* the peer, "IP:port" */
    int protocol;           /* 3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0) */
} boxmq_connect_request;

/** What on_publish sees of a PUBLISH; lent for the call. */
typedef struct boxmq_publish_request {
    const char *client_id;
    const char *topic;
    const uint8_t *payload; /* followed by a NUL not counted in payload_len */
    size_t payload_len;
    int qos;
    bool retain;
} boxmq_publish_request;

/** What on_subscribe sees of one filter of a SUBSCRIBE; lent for the call. */
typedef struct boxmq_subscribe_request {
    const char *client_id;
    const char *filter;
    int qos; /* asked for */
} boxmq_subscribe_request;

typedef int (*boxmq_connect_cb)(void *user_data, const boxmq_connect_request *request);
typedef int (*boxmq_publish_cb)(void *user_data, const boxmq_publish_request *request);
typedef int (*boxmq_subscribe_cb)(void *user_data, const boxmq_subscribe_request *request);

/** Sets the hook that decides who may connect (NULL removes it), called
 *  for every CONNECT from the network after the password file; in-process
 *  clients and bridges are not asked. Returns BOXMQ_ACCEPT, BOXMQ_REFUSE
 *  or BOXMQ_BAD_CREDENTIALS. boxmq_broker_on_publish (every PUBLISH from
 *  the network, after the ACL) and boxmq_broker_on_subscribe (each filter
 *  of a SUBSCRIBE) work the same way. Set them before boxmq_broker_start
 *  (BOXMQ_ERR_ALREADY_RUNNING while running); a restart keeps them.
 *
 *  THREAD: hooks run on the broker's hook threads (named "boxmq-hook"),
 *  never on the broker thread and never on yours, and SEVERAL AT ONCE:
 *  calls for different clients run concurrently (each on a thread of the
 *  pool, which grows to 64 while calls are slow), calls for one client
 *  one after the other. The client waits for the answer, every other
 *  client goes on. So a hook may block (a database look-up), but it must
 *  be thread-safe, and so must anything it reaches through user_data.
 *  An answer that does not come within the hook timeout (5000 ms,
 *  boxmq_broker_hook_timeout) refuses. A hook must not unwind or longjmp
 *  out. It may call boxmq functions other than boxmq_broker_stop and
 *  boxmq_broker_free (which would wait for the broker while the broker's
 *  client waits for the hook). */
int boxmq_broker_on_connect(const boxmq_broker *broker, boxmq_connect_cb callback, void *user_data);
int boxmq_broker_on_publish(const boxmq_broker *broker, boxmq_publish_cb callback, void *user_data);
int boxmq_broker_on_subscribe(const boxmq_broker *broker, boxmq_subscribe_cb callback,
                              void *user_data);

/** How long a hook may take, in milliseconds (default 5000), before its
 *  client's packet is refused. Before boxmq_broker_start. */
int boxmq_broker_hook_timeout(const boxmq_broker *broker, uint32_t timeout_ms);

/** Event kinds. */
#define BOXMQ_EVENT_CONNECTED 1    /* a network client connected */
#define BOXMQ_EVENT_DISCONNECTED 2 /* its connection ended; reason says why */
#define BOXMQ_EVENT_SUBSCRIBED 3   /* a filter (topic) was granted */
#define BOXMQ_EVENT_UNSUBSCRIBED 4 /* a filter (topic) was removed */
#define BOXMQ_EVENT_DROPPED 5      /* its queue bound was reached (reason "queue full") */

/** An event. The strings belong to the caller until boxmq_event_free. */
typedef struct boxmq_event {
    int kind;        /* BOXMQ_EVENT_* */
    char *client_id;
    char *topic;     /* the filter for SUBSCRIBED / UNSUBSCRIBED, else NULL */
    char *reason;    /* DISCONNECTED: "clean", "keepalive", "taken over",
                        "protocol error", "connection lost", "shutdown";
                        DROPPED: "queue full"; else NULL */
} boxmq_event;

/** Waits at most timeout_ms (0: do not wait; negative: until an event or
 *  the broker stops) for the next event of the running broker and moves
 *  it into *out (free with boxmq_event_free). Returns BOXMQ_OK or
 *  BOXMQ_TIMEOUT. Events come in the order they happened (so in order per
 *  client) through a bounded channel of 1024: events that do not fit
 *  while nobody calls this are lost and counted (boxmq_broker_events_lost);
 *  messages are never held back. Any thread; each event goes to one
 *  caller. Errors: BOXMQ_ERR_NOT_RUNNING, BOXMQ_ERR_INVALID_ARGUMENT. */
int boxmq_broker_next_event(const boxmq_broker *broker, int32_t timeout_ms, boxmq_event *out);

/** Events lost so far (>= 0), or a negative error (BOXMQ_ERR_NOT_RUNNING). */
int64_t boxmq_broker_events_lost(const boxmq_broker *broker);

/** Frees the strings of an event and zeroes it; NULL and a zeroed event
 *  are ignored. */
void boxmq_event_free(boxmq_event *event);

/* ---- In-process clients ---------------------------------------------- */

/** An in-process client: an MQTT 3.1.1 connection with a clean session
 *  whose bytes never leave memory. Opaque. */
typedef struct boxmq_client boxmq_client;

/** A subscription. Opaque. */
typedef struct boxmq_subscription boxmq_subscription;

/** A message. From boxmq_subscription_next the buffers belong to the
 *  caller until boxmq_message_free; in a callback they are lent for the
 *  duration of the call. Plain data: not synchronized. */
typedef struct boxmq_message {
    const char *topic;      /* UTF-8, NUL-terminated */
    size_t topic_len;       /* bytes, without the NUL */
    const uint8_t *payload; /* followed by a NUL byte not counted in payload_len */
    size_t payload_len;     /* bytes */
    int qos;                /* delivered QoS: lower of published and subscribed */
    bool retain;            /* a retained message sent because of the subscription */
} boxmq_message;

/** Connects an in-process client to the running broker with this client
 *  id (NULL or "": one is assigned). It needs no credentials and no ACL
 *  applies. A network client connecting with the same id takes the
 *  session over; this client's calls then fail with
 *  BOXMQ_ERR_DISCONNECTED.
 *  Errors: BOXMQ_ERR_NOT_RUNNING, BOXMQ_ERR_REFUSED (id too long, or the
 *  broker refused: max_sessions), BOXMQ_ERR_TIMEOUT. */
int boxmq_client_new(const boxmq_broker *broker, const char *client_id, boxmq_client **out);

/** Publishes payload_len bytes from payload (NULL allowed when
 *  payload_len is 0) on topic with QoS 0, 1 or 2. Returns once the broker
 *  has routed the message to every matching subscriber, network or
 *  in-process (and stored it, with retain), which is what a QoS 1/2
 *  acknowledgement means. Blocks the calling thread for that long (one
 *  broker loop turn). An empty retained payload deletes the retained
 *  message.
 *  Errors: BOXMQ_ERR_INVALID_TOPIC, BOXMQ_ERR_TOO_LARGE,
 *  BOXMQ_ERR_INVALID_ARGUMENT (qos), BOXMQ_ERR_DISCONNECTED,
 *  BOXMQ_ERR_NOT_RUNNING, BOXMQ_ERR_BUSY, BOXMQ_ERR_TIMEOUT. */
int boxmq_client_publish(const boxmq_client *client, const char *topic, const uint8_t *payload,
                         size_t payload_len, int qos, bool retain);

/** Subscribes to filter ('+' and '#' as in MQTT; '$' topics are not
 *  matched by a leading wildcard) with maximum QoS qos (0, 1, 2).
 *  Retained messages arrive first, then every matching publication; read
 *  them with boxmq_subscription_next. Each subscription is a connection of
 *  its own (client id "<id>.sub<n>"), with a bounded queue of
 *  max_inflight + 128 messages; when nobody reads it the broker holds
 *  further messages back under its limits (QoS 0 ones may be dropped,
 *  counted in publish_dropped). It lives on after its client is freed.
 *  Errors: BOXMQ_ERR_INVALID_TOPIC, BOXMQ_ERR_REFUSED,
 *  BOXMQ_ERR_INVALID_ARGUMENT, BOXMQ_ERR_NOT_RUNNING, BOXMQ_ERR_TIMEOUT. */
int boxmq_client_subscribe(const boxmq_client *client, const char *filter, int qos,
                           boxmq_subscription **out);

/** A subscription callback: user_data as given, and the message, lent for
 *  the call (do not free it, copy what you keep). */
typedef void (*boxmq_message_cb)(void *user_data, const boxmq_message *message);

/** Subscribes as boxmq_client_subscribe, and calls callback(user_data,
 *  message) for every message.
 *
 *  THREAD: the callback runs on a thread of the subscription's own (named
 *  "boxmq-callback"), started here: never on the broker thread and never
 *  on the caller's thread. Calls are one at a time, in order. So the
 *  callback may block or take its time without slowing the broker (its
 *  messages wait as for a slow reader), but anything it shares with your
 *  other threads (user_data) needs your own locking. It may call any
 *  boxmq function, including boxmq_subscription_free on its own
 *  subscription (which then does not wait for it) and boxmq_broker_stop.
 *  It must not unwind or longjmp out.
 *
 *  boxmq_subscription_next on this subscription returns
 *  BOXMQ_ERR_INVALID_ARGUMENT. Errors: as boxmq_client_subscribe,
 *  BOXMQ_ERR_INVALID_ARGUMENT (callback NULL), BOXMQ_ERR_THREAD. */
int boxmq_client_subscribe_callback(const boxmq_client *client, const char *filter, int qos,
                                    boxmq_message_cb callback, void *user_data,
                                    boxmq_subscription **out);

/** Waits for the next message of a subscription from
 *  boxmq_client_subscribe: at most timeout_ms milliseconds (0: do not
 *  wait; negative: for ever). Returns BOXMQ_OK with the message moved into
 *  *out (free it with boxmq_message_free; *out's old contents are
 *  overwritten, not freed), BOXMQ_TIMEOUT, BOXMQ_CLOSED once the
 *  subscription has ended (broker stopped) and is empty, or a negative
 *  error (BOXMQ_ERR_INVALID_ARGUMENT for a callback subscription). Several
 *  threads may wait on one subscription; each message goes to one. */
int boxmq_subscription_next(const boxmq_subscription *sub, int32_t timeout_ms, boxmq_message *out);

/** Frees the buffers of a message filled by boxmq_subscription_next and
 *  zeroes it; a zeroed message (and NULL) is ignored. Never for a message
 *  lent to a callback. */
void boxmq_message_free(boxmq_message *message);

/** Unsubscribes and frees the subscription; messages still queued are
 *  dropped. For a callback subscription, waits for a running callback to
 *  return (except when called from that callback). Must not run
 *  concurrently with other calls on this subscription. */
void boxmq_subscription_free(boxmq_subscription *sub);

/** Disconnects and frees the client (its subscriptions live on). Must not
 *  run concurrently with other calls on this client. */
void boxmq_client_free(boxmq_client *client);

#ifdef __cplusplus
}
#endif

#endif /* BOXMQ_H */
