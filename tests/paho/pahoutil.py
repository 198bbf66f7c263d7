"""Small helpers shared by the paho-mqtt end-to-end scripts.

Every script is run as `python3 tests/paho/<script>.py PORT [args]` by the
Rust harness (tests/common/mod.rs, run_paho). It must exit 0 on success and
non-zero with a clear message on failure, and never run unbounded: every wait
has a timeout, and a watchdog ends the process if the whole script hangs.
"""

import os
import queue
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HOST = "127.0.0.1"
WAIT = 5.0  # seconds for any single expected event


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def port_from_argv():
    if len(sys.argv) < 2:
        fail("usage: %s PORT [args]" % sys.argv[0])
    return int(sys.argv[1])


def watchdog(seconds):
    """Ends the process with status 3 if the script runs longer than this."""

    def expire():
        print("FAIL: watchdog: script still running after %ss" % seconds, file=sys.stderr, flush=True)
        os._exit(3)

    t = threading.Timer(seconds, expire)
    t.daemon = True
    t.start()


class Client:
    """A paho client (MQTT 3.1.1, callback API v2) with blocking helpers."""

    def __init__(self, client_id, clean_session=True, transport="tcp"):
        self.id = client_id
        self.mqttc = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
            transport=transport,
        )
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.connack = None
        self.subacks = {}
        self.suback_cv = threading.Condition()
        self.mqttc.on_connect = self._on_connect
        self.mqttc.on_message = self._on_message
        self.mqttc.on_subscribe = self._on_subscribe

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = (flags.session_present, reason_code)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.suback_cv:
            self.subacks[mid] = [rc.value for rc in reason_codes]
            self.suback_cv.notify_all()

    def will(self, topic, payload, qos=0, retain=False):
        self.mqttc.will_set(topic, payload, qos=qos, retain=retain)
        return self

    def connect(self, port, keepalive=60, threaded=True):
        """Connects; returns the session-present flag. With threaded=False
        the caller drives the network loop (used to kill the socket)."""
        try:
            self.mqttc.connect(HOST, port, keepalive=keepalive)
        except OSError as e:
            fail("%s: cannot connect to %s:%d: %s" % (self.id, HOST, port, e))
        if threaded:
            self.mqttc.loop_start()
            check(self.connected.wait(WAIT), "%s: no CONNACK within %ss" % (self.id, WAIT))
        else:
            for _ in range(100):
                self.mqttc.loop(timeout=0.05)
                if self.connected.is_set():
                    break
            check(self.connected.is_set(), "%s: no CONNACK" % self.id)
        sp, rc = self.connack
        check(not rc.is_failure, "%s: CONNACK refused: %s" % (self.id, rc))
        return bool(sp)

    def subscribe(self, topic, qos):
        rc, mid = self.mqttc.subscribe(topic, qos)
        check(rc == mqtt.MQTT_ERR_SUCCESS, "%s: subscribe failed to send: %s" % (self.id, rc))
        with self.suback_cv:
            ok = self.suback_cv.wait_for(lambda: mid in self.subacks, timeout=WAIT)
        check(ok, "%s: no SUBACK for %s" % (self.id, topic))
        return self.subacks[mid]

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.mqttc.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=WAIT)
        check(info.is_published(), "%s: publish to %s (QoS %d) not completed" % (self.id, topic, qos))

    def get(self, what="a message"):
        try:
            return self.messages.get(timeout=WAIT)
        except queue.Empty:
            fail("%s: expected %s within %ss" % (self.id, what, WAIT))

    def expect_none(self, seconds, what="message"):
        try:
            msg = self.messages.get(timeout=seconds)
        except queue.Empty:
            return
        fail("%s: unexpected %s on %s: %r" % (self.id, what, msg.topic, msg.payload))

    def disconnect(self):
        self.mqttc.disconnect()
        self.mqttc.loop_stop()
