/*
 * A dashboard with the broker inside, in C: Shelly buttons connect over TCP
 * and the program prints every press, with no separate MQTT server. The C
 * twin of examples/button_dashboard.rs, with the same output.
 *
 *   cargo build --profile release-lib -p boxmq-ffi
 *   cc -std=c99 -O2 -Iffi/include examples/c/button_dashboard.c \
 *       target/release-lib/libboxmq.a -lpthread -ldl -lm -o button_dashboard
 *   ./button_dashboard 1883
 *   mosquitto_pub -p 1883 -t shellies/shellybutton1-A4CF12F45A10/input_event/0 \
 *       -m '{"event":"S","event_cnt":3}'
 *
 * prints "shellybutton1-A4CF12F45A10: short press (S), count 3". Ctrl-C
 * (or SIGTERM) stops it cleanly.
 *
 * Windows (boxmq.dll, built with mingw-w64; docs/WINDOWS.md):
 *
 *   x86_64-w64-mingw32-gcc -std=c99 -O2 -Iffi/include examples/c/button_dashboard.c \
 *       target/x86_64-pc-windows-gnu/release-lib/libboxmq.dll.a -o button_dashboard.exe
 */
#define _POSIX_C_SOURCE 200809L

#include "boxmq.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the Shelly buttons publish on. */
static const char BUTTONS[] = "shellies/+/input_event/0";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* The text after "key" and its colon in a flat JSON object, or NULL. Good
 * enough for the buttons' one-line payloads; not a JSON parser. */
static const char *json_value(const char *json, const char *key) {
    char quoted[32];
    const char *at;
    size_t n = (size_t)snprintf(quoted, sizeof quoted, "\"%s\"", key);
    if (n >= sizeof quoted || (at = strstr(json, quoted)) == NULL) return NULL;
    at += n;
    while (isspace((unsigned char)*at)) at++;
    if (*at != ':') return NULL;
    at++;
    while (isspace((unsigned char)*at)) at++;
    return at;
}

/* A string value without escapes, copied into out. */
static int json_string(const char *json, const char *key, char *out, size_t len) {
    const char *v = json_value(json, key), *end;
    if (v == NULL || *v != '"') return 0;
    v++;
    end = strchr(v, '"');
    if (end == NULL || (size_t)(end - v) >= len || memchr(v, '\\', (size_t)(end - v))) return 0;
    memcpy(out, v, (size_t)(end - v));
    out[end - v] = 0;
    return 1;
}

/* A non-negative integer value. */
static int json_number(const char *json, const char *key, unsigned long long *out) {
    const char *v = json_value(json, key);
    unsigned long long n = 0;
    if (v == NULL || !isdigit((unsigned char)*v)) return 0;
    for (; isdigit((unsigned char)*v); v++) {
        if (n > (~0ULL - 9) / 10) return 0;
        n = n * 10 + (unsigned)(*v - '0');
    }
    *out = n;
    return 1;
}

/* Prints "<device>: <kind> (<code>), count <n>" for topic
 * shellies/<device>/input_event/0 and a payload such as
 * {"event":"S","event_cnt":3}; returns 0 when either is not as expected. */
static int print_press(const boxmq_message *m) {
    const char *device = m->topic + strlen("shellies/"), *slash, *kind;
    char event[16];
    unsigned long long count;
    if (strncmp(m->topic, "shellies/", strlen("shellies/")) != 0) return 0;
    slash = strchr(device, '/');
    if (slash == NULL || slash == device) return 0;
    /* The payload is NUL-terminated; one holding NUL bytes is not JSON. */
    if (memchr(m->payload, 0, m->payload_len) != NULL) return 0;
    if (!json_string((const char *)m->payload, "event", event, sizeof event)) return 0;
    if (!json_number((const char *)m->payload, "event_cnt", &count)) return 0;
    if (strcmp(event, "S") == 0) kind = "short press";
    else if (strcmp(event, "L") == 0) kind = "long press";
    else if (strcmp(event, "SS") == 0) kind = "double press";
    else if (strcmp(event, "SSS") == 0) kind = "triple press";
    else if (strcmp(event, "SL") == 0) kind = "short then long press";
    else if (strcmp(event, "LS") == 0) kind = "long then short press";
    else kind = "press";
    printf("%.*s: %s (%s), count %llu\n", (int)(slash - device), device, kind, event, count);
    return 1;
}

static void print_state(const boxmq_broker *b) {
    char reason[256];
    int st = boxmq_broker_state(b, reason, sizeof reason);
    if (st == BOXMQ_STATE_FAILED) printf("state: Failed: %s\n", reason);
    else printf("state: %s\n", boxmq_state_name(st));
}

static int fail(const char *what) {
    fprintf(stderr, "button_dashboard: %s: %s\n", what, boxmq_last_error());
    return 1;
}

int main(int argc, char **argv) {
    char config[128], addr[64];
    long port = 1883;
    boxmq_broker *broker = NULL;
    boxmq_client *app = NULL;
    boxmq_subscription *presses = NULL;
    int i, n, rc = 0;

    if (argc > 1) {
        char *end;
        port = strtol(argv[1], &end, 10);
        if (*argv[1] == 0 || *end != 0 || port < 0 || port > 65535) {
            fprintf(stderr, "button_dashboard: \"%s\" is not a port number\n", argv[1]);
            return 2;
        }
    }
    /* Output goes to a pipe in the tests: one line at a time. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Plain C signal(), so the example also builds for Windows with
     * mingw-w64 against boxmq.dll (docs/WINDOWS.md), where Ctrl-C arrives
     * as SIGINT. */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    snprintf(config, sizeof config, "listener %ld 127.0.0.1\npersistence false", port);
    if (boxmq_broker_new(config, &broker) != BOXMQ_OK) return fail("config");
    print_state(broker);
    if (boxmq_broker_start(broker) != BOXMQ_OK) {
        print_state(broker);
        rc = fail("start");
        boxmq_broker_free(broker);
        return rc;
    }
    print_state(broker);
    n = boxmq_broker_address_count(broker);
    for (i = 0; i < n; i++) {
        if (boxmq_broker_address(broker, (size_t)i, addr, sizeof addr) >= 0)
            printf("listening on %s\n", addr);
    }

    if (boxmq_client_new(broker, "button-dashboard", &app) != BOXMQ_OK) {
        rc = fail("client");
        goto out;
    }
    if (boxmq_client_subscribe(app, BUTTONS, 1, &presses) != BOXMQ_OK) {
        rc = fail("subscribe");
        goto out;
    }
    printf("waiting for presses on %s\n", BUTTONS);

    while (!stop_requested) {
        boxmq_message m;
        int got = boxmq_subscription_next(presses, 200, &m);
        if (got == BOXMQ_TIMEOUT) continue;
        if (got == BOXMQ_CLOSED) break;
        if (got != BOXMQ_OK) {
            rc = fail("receive");
            break;
        }
        if (!print_press(&m))
            printf("%s: unreadable event \"%.*s\"\n", m.topic, (int)m.payload_len,
                   (const char *)m.payload);
        boxmq_message_free(&m);
    }
    if (boxmq_broker_stop(broker) != BOXMQ_OK) rc = fail("stop");
    print_state(broker);
out:
    boxmq_subscription_free(presses);
    boxmq_client_free(app);
    boxmq_broker_free(broker);
    return rc;
}
