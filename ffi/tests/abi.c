/*
 * The C ABI from C: compiled by tests/ffi.rs with -std=c99 -Wall -Wextra
 * -Werror -pedantic against ffi/include/boxmq.h and linked with the static
 * library, then run. Prints "abi: N passed, 0 failed" and exits 0, or names
 * the first failed check and exits 1.
 */
#include "boxmq.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The same numbers are asserted on the Rust side (ffi/src/lib.rs). */
typedef char stats_size_is_96[sizeof(boxmq_stats) == 96 ? 1 : -1];
typedef char stats_field_offset[offsetof(boxmq_stats, messages_received) == 24 ? 1 : -1];
typedef char stats_last_offset[offsetof(boxmq_stats, subscriptions) == 88 ? 1 : -1];
#if UINTPTR_MAX == 0xffffffffffffffffu
typedef char message_size[sizeof(boxmq_message) == 40 ? 1 : -1];
typedef char message_payload[offsetof(boxmq_message, payload) == 16 ? 1 : -1];
typedef char message_qos[offsetof(boxmq_message, qos) == 32 ? 1 : -1];
typedef char message_retain[offsetof(boxmq_message, retain) == 36 ? 1 : -1];
#endif

static int passed;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "abi.c:%d: check failed: %s (last error: %s)\n", __LINE__, #cond, \
                    boxmq_last_error());                                                 \
            printf("abi: %d passed, 1 failed\n", passed);                                \
            exit(1);                                                                     \
        }                                                                                \
        passed++;                                                                        \
    } while (0)

struct seen {
    pthread_mutex_t lock;
    pthread_t main_thread;
    int count;
    int on_main_thread;
    int last_qos;
    char last_topic[64];
};

static void on_message(void *user_data, const boxmq_message *m) {
    struct seen *s = user_data;
    pthread_mutex_lock(&s->lock);
    s->count++;
    if (pthread_equal(pthread_self(), s->main_thread)) s->on_main_thread++;
    s->last_qos = m->qos;
    snprintf(s->last_topic, sizeof s->last_topic, "%s", m->topic);
    pthread_mutex_unlock(&s->lock);
}

static void sleep_ms(long ms) {
    struct timespec t;
    t.tv_sec = ms / 1000;
    t.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&t, NULL);
}

static void expect_message(boxmq_subscription *sub, const char *topic, const char *payload,
                           int qos, bool retain) {
    boxmq_message m;
    CHECK(boxmq_subscription_next(sub, 5000, &m) == BOXMQ_OK);
    CHECK(strcmp(m.topic, topic) == 0);
    CHECK(m.topic_len == strlen(topic));
    CHECK(m.payload_len == strlen(payload));
    CHECK(memcmp(m.payload, payload, m.payload_len) == 0);
    CHECK(m.payload[m.payload_len] == 0);
    CHECK(m.qos == qos);
    CHECK(m.retain == retain);
    boxmq_message_free(&m);
    CHECK(m.topic == NULL && m.payload == NULL);
    boxmq_message_free(&m); /* zeroed: ignored */
}

/* ---- Application hooks: the hook threads and a raw network client ---- */

struct hook_seen {
    pthread_mutex_t lock;
    pthread_t main_thread;
    int calls;
    int on_main_thread;
    char last_address[64];
    int last_protocol;
};

static int on_connect(void *user_data, const boxmq_connect_request *r) {
    struct hook_seen *s = user_data;
    int known = r->username != NULL && strcmp(r->username, "button") == 0 &&
                r->password != NULL && r->password_len == 3 &&
                memcmp(r->password, "pw!", 3) == 0;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    if (pthread_equal(pthread_self(), s->main_thread)) s->on_main_thread++;
    snprintf(s->last_address, sizeof s->last_address, "%s", r->address);
    s->last_protocol = r->protocol;
    pthread_mutex_unlock(&s->lock);
    if (strcmp(r->client_id, "liar") == 0) return BOXMQ_BAD_CREDENTIALS;
    return known ? BOXMQ_ACCEPT : BOXMQ_REFUSE;
}

/* Sends an MQTT 3.1.1 CONNECT (user "button", password pw) from a socket
 * and returns the CONNACK's return code, or -1. Keeps the socket open in
 * *fd when accepted. */
static int raw_connect(int port, const char *client_id, const char *pw, int *fd) {
    unsigned char pkt[128];
    size_t id_len = strlen(client_id), pw_len = strlen(pw), n = 0;
    unsigned char ack[4];
    struct sockaddr_in a;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    pkt[n++] = 0x10;
    pkt[n++] = (unsigned char)(10 + 2 + id_len + 2 + 6 + 2 + pw_len);
    memcpy(pkt + n, "\0\4MQTT\4\xC2\0\0", 10); /* user + password + clean */
    n += 10;
    pkt[n++] = 0;
    pkt[n++] = (unsigned char)id_len;
    memcpy(pkt + n, client_id, id_len);
    n += id_len;
    memcpy(pkt + n, "\0\6button", 8);
    n += 8;
    pkt[n++] = 0;
    pkt[n++] = (unsigned char)pw_len;
    memcpy(pkt + n, pw, pw_len);
    n += pw_len;
    if (write(s, pkt, n) != (ssize_t)n || read(s, ack, 4) != 4 || ack[0] != 0x20) {
        close(s);
        return -1;
    }
    if (ack[3] == 0 && fd != NULL) {
        *fd = s;
    } else {
        close(s);
    }
    return ack[3];
}

static void test_hooks(void) {
    boxmq_broker *b = NULL;
    boxmq_event e;
    struct hook_seen s;
    int port, fd = -1, got_connected = 0, got_disconnected = 0, i;

    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    s.main_thread = pthread_self();
    CHECK(boxmq_broker_new("listener 0 127.0.0.1\npersistence false\nsys_interval 0", &b) ==
          BOXMQ_OK);
    CHECK(boxmq_broker_on_connect(b, on_connect, &s) == BOXMQ_OK);
    CHECK(boxmq_broker_hook_timeout(b, 2000) == BOXMQ_OK);
    CHECK(boxmq_broker_next_event(b, 0, &e) == BOXMQ_ERR_NOT_RUNNING);
    CHECK(boxmq_broker_start(b) == BOXMQ_OK);
    CHECK(boxmq_broker_on_connect(b, NULL, NULL) == BOXMQ_ERR_ALREADY_RUNNING);
    port = boxmq_broker_port(b, 0);
    CHECK(raw_connect(port, "stranger", "no", NULL) == 0x05);
    CHECK(raw_connect(port, "liar", "pw!", NULL) == 0x04);
    CHECK(raw_connect(port, "btn", "pw!", &fd) == 0x00);
    pthread_mutex_lock(&s.lock);
    CHECK(s.calls == 3);
    CHECK(s.on_main_thread == 0); /* on a boxmq-hook thread */
    CHECK(strncmp(s.last_address, "127.0.0.1:", 10) == 0);
    CHECK(s.last_protocol == 4);
    pthread_mutex_unlock(&s.lock);
    close(fd);
    for (i = 0; i < 10 && !(got_connected && got_disconnected); i++) {
        if (boxmq_broker_next_event(b, 500, &e) != BOXMQ_OK) continue;
        CHECK(strcmp(e.client_id, "btn") == 0);
        if (e.kind == BOXMQ_EVENT_CONNECTED) got_connected = 1;
        if (e.kind == BOXMQ_EVENT_DISCONNECTED) {
            got_disconnected = 1;
            CHECK(strcmp(e.reason, "connection lost") == 0);
        }
        CHECK(e.topic == NULL);
        boxmq_event_free(&e);
        CHECK(e.client_id == NULL);
        boxmq_event_free(&e);
    }
    CHECK(got_connected && got_disconnected);
    CHECK(boxmq_broker_next_event(b, 0, &e) == BOXMQ_TIMEOUT);
    CHECK(boxmq_broker_events_lost(b) == 0);
    boxmq_broker_free(b);
    pthread_mutex_destroy(&s.lock);
}

int main(void) {
    char buf[256];
    boxmq_broker *b = NULL, *second = NULL;
    boxmq_client *c = NULL;
    boxmq_subscription *all = NULL, *retained = NULL, *cb = NULL;
    boxmq_stats st;
    struct seen seen;
    int port, i;

    CHECK(strlen(boxmq_version()) > 0);
    CHECK(strcmp(boxmq_state_name(BOXMQ_STATE_FAILED), "Failed") == 0);
    CHECK(strcmp(boxmq_last_error(), "") == 0);

    /* A config error names the line. */
    CHECK(boxmq_broker_new("persistence false\nlistener nope", &b) == BOXMQ_ERR_CONFIG);
    CHECK(b == NULL);
    CHECK(strstr(boxmq_last_error(), "config:2:") != NULL);
    CHECK(boxmq_broker_new(NULL, NULL) == BOXMQ_ERR_INVALID_ARGUMENT);

    CHECK(boxmq_broker_new("listener 0 127.0.0.1\npersistence false\nsys_interval 0", &b) ==
          BOXMQ_OK);
    CHECK(boxmq_broker_state(b, buf, sizeof buf) == BOXMQ_STATE_INIT);
    CHECK(boxmq_broker_port(b, 0) == BOXMQ_ERR_NOT_RUNNING);
    CHECK(boxmq_client_new(b, "early", &c) == BOXMQ_ERR_NOT_RUNNING);
    CHECK(boxmq_broker_start(b) == BOXMQ_OK);
    CHECK(boxmq_broker_start(b) == BOXMQ_ERR_ALREADY_RUNNING);
    CHECK(boxmq_broker_state(b, buf, sizeof buf) == BOXMQ_STATE_RUNNING);
    CHECK(strcmp(buf, "") == 0);
    CHECK(boxmq_broker_address_count(b) == 1);
    port = boxmq_broker_port(b, 0);
    CHECK(port > 0);
    CHECK(boxmq_broker_port(b, 1) == BOXMQ_ERR_INVALID_ARGUMENT);
    {
        char want[64];
        int n = boxmq_broker_address(b, 0, NULL, 0);
        snprintf(want, sizeof want, "127.0.0.1:%d", port);
        CHECK(n == (int)strlen(want));
        CHECK(boxmq_broker_address(b, 0, buf, sizeof buf) == n);
        CHECK(strcmp(buf, want) == 0);
        CHECK(boxmq_broker_address(b, 0, buf, 4) == n); /* truncated */
        CHECK(strcmp(buf, "127") == 0);
    }

    /* Every QoS, both ways. */
    CHECK(boxmq_client_new(b, "abi", &c) == BOXMQ_OK);
    CHECK(boxmq_client_subscribe(c, "t/#", 2, &all) == BOXMQ_OK);
    {
        boxmq_message m;
        CHECK(boxmq_subscription_next(all, 0, &m) == BOXMQ_TIMEOUT);
    }
    for (i = 0; i <= 2; i++) {
        char topic[16], payload[16];
        snprintf(topic, sizeof topic, "t/%d", i);
        snprintf(payload, sizeof payload, "qos %d", i);
        CHECK(boxmq_client_publish(c, topic, (const uint8_t *)payload, strlen(payload), i,
                                   false) == BOXMQ_OK);
    }
    expect_message(all, "t/0", "qos 0", 0, false);
    expect_message(all, "t/1", "qos 1", 1, false);
    expect_message(all, "t/2", "qos 2", 2, false);
    CHECK(boxmq_client_publish(c, "t/empty", NULL, 0, 1, false) == BOXMQ_OK);
    expect_message(all, "t/empty", "", 1, false);

    /* Retained: delivered to a new subscription with retain set, QoS
     * downgraded to the subscription's. */
    CHECK(boxmq_client_publish(c, "r/x", (const uint8_t *)"kept", 4, 2, true) == BOXMQ_OK);
    CHECK(boxmq_client_subscribe(c, "r/+", 1, &retained) == BOXMQ_OK);
    expect_message(retained, "r/x", "kept", 1, true);

    /* Errors leave the client working. */
    CHECK(boxmq_client_publish(c, "t/#", NULL, 0, 0, false) == BOXMQ_ERR_INVALID_TOPIC);
    CHECK(strstr(boxmq_last_error(), "invalid topic name") != NULL);
    CHECK(boxmq_client_publish(c, "t/x", NULL, 0, 3, false) == BOXMQ_ERR_INVALID_ARGUMENT);
    CHECK(boxmq_client_publish(c, "t/x", NULL, 1, 0, false) == BOXMQ_ERR_INVALID_ARGUMENT);
    CHECK(boxmq_client_publish(c, NULL, NULL, 0, 0, false) == BOXMQ_ERR_INVALID_ARGUMENT);
    CHECK(boxmq_client_subscribe(c, "a/#/b", 0, &cb) == BOXMQ_ERR_INVALID_TOPIC);
    CHECK(boxmq_client_subscribe(c, "$share/g+/a", 0, &cb) == BOXMQ_ERR_INVALID_TOPIC);
    CHECK(boxmq_client_subscribe(c, "a", 0, NULL) == BOXMQ_ERR_INVALID_ARGUMENT);
    CHECK(boxmq_client_subscribe_callback(c, "a", 0, NULL, NULL, &cb) ==
          BOXMQ_ERR_INVALID_ARGUMENT);
    CHECK(boxmq_client_publish(c, "t/after", (const uint8_t *)"ok", 2, 1, false) == BOXMQ_OK);
    expect_message(all, "t/after", "ok", 1, false);

    /* A callback subscription: called on a thread of its own. */
    memset(&seen, 0, sizeof seen);
    pthread_mutex_init(&seen.lock, NULL);
    seen.main_thread = pthread_self();
    CHECK(boxmq_client_subscribe_callback(c, "cb/#", 1, on_message, &seen, &cb) == BOXMQ_OK);
    {
        boxmq_message m;
        CHECK(boxmq_subscription_next(cb, 0, &m) == BOXMQ_ERR_INVALID_ARGUMENT);
    }
    for (i = 0; i < 3; i++) {
        CHECK(boxmq_client_publish(c, "cb/press", (const uint8_t *)"S", 1, 2, false) == BOXMQ_OK);
    }
    for (i = 0; i < 500; i++) {
        int n;
        pthread_mutex_lock(&seen.lock);
        n = seen.count;
        pthread_mutex_unlock(&seen.lock);
        if (n >= 3) break;
        sleep_ms(10);
    }
    pthread_mutex_lock(&seen.lock);
    CHECK(seen.count == 3);
    CHECK(seen.on_main_thread == 0);
    CHECK(seen.last_qos == 1);
    CHECK(strcmp(seen.last_topic, "cb/press") == 0);
    pthread_mutex_unlock(&seen.lock);

    /* Counters: the client and its three subscriptions are clients. */
    CHECK(boxmq_broker_stats(b, &st) == BOXMQ_OK);
    CHECK(st.clients_connected == 4);
    CHECK(st.messages_received >= 9);
    CHECK(st.retained_messages == 1);
    CHECK(st.subscriptions == 3);
    CHECK(boxmq_broker_stats(b, NULL) == BOXMQ_ERR_INVALID_ARGUMENT);

    /* A second broker on the same port fails to start, with the reason. */
    snprintf(buf, sizeof buf, "listener %d 127.0.0.1\npersistence false", port);
    CHECK(boxmq_broker_new(buf, &second) == BOXMQ_OK);
    CHECK(boxmq_broker_start(second) == BOXMQ_ERR_BIND);
    CHECK(strstr(boxmq_last_error(), "cannot listen on") != NULL);
    CHECK(boxmq_broker_state(second, buf, sizeof buf) == BOXMQ_STATE_FAILED);
    CHECK(strstr(buf, "cannot listen on 127.0.0.1:") != NULL);
    boxmq_broker_free(second);

    /* Stop: subscriptions end, the client reports it. */
    CHECK(boxmq_broker_stop(b) == BOXMQ_OK);
    CHECK(boxmq_broker_stop(b) == BOXMQ_OK);
    CHECK(boxmq_broker_state(b, NULL, 0) == BOXMQ_STATE_STOPPED);
    {
        boxmq_message m;
        CHECK(boxmq_subscription_next(all, 5000, &m) == BOXMQ_CLOSED);
    }
    CHECK(boxmq_client_publish(c, "t/late", NULL, 0, 0, false) < 0);
    CHECK(boxmq_broker_stats(b, &st) == BOXMQ_ERR_NOT_RUNNING);

    /* And it starts again on a new port. */
    CHECK(boxmq_broker_start(b) == BOXMQ_OK);
    CHECK(boxmq_broker_port(b, 0) > 0);

    boxmq_subscription_free(cb);
    boxmq_subscription_free(retained);
    boxmq_subscription_free(all);
    boxmq_client_free(c);
    boxmq_broker_free(b);
    boxmq_broker_free(NULL);
    boxmq_client_free(NULL);
    boxmq_subscription_free(NULL);
    boxmq_message_free(NULL);
    pthread_mutex_destroy(&seen.lock);
    test_hooks();
    printf("abi: %d passed, 0 failed\n", passed);
    return 0;
}
