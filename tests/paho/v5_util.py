"""paho-mqtt 2.x helpers for the MQTT 5.0 scripts (tests/paho/v5_*.py).

Same contract as pahoutil.py (which this reuses): exit 0 on success,
non-zero with a message on failure, every wait bounded.
"""

import queue
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from pahoutil import HOST, WAIT, check, fail


def props(packet_type, **values):
    """A Properties object for packet_type with the given attributes,
    e.g. props(PacketTypes.PUBLISH, ResponseTopic="a/b")."""
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


class Client5:
    """A paho client speaking MQTT 5.0 (callback API v2) with blocking
    helpers."""

    def __init__(self, client_id, clean_start=True, session_expiry=None, topic_alias_maximum=None):
        self.id = client_id
        self.clean_start = clean_start
        self.session_expiry = session_expiry
        self.topic_alias_maximum = topic_alias_maximum
        self.mqttc = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
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
        self.connack = (flags.session_present, reason_code, properties)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.suback_cv:
            self.subacks[mid] = [rc.value for rc in reason_codes]
            self.suback_cv.notify_all()

    def connect(self, port, keepalive=60):
        """Connects (network loop in a thread); returns session present."""
        p = props(PacketTypes.CONNECT)
        if self.session_expiry is not None:
            p.SessionExpiryInterval = self.session_expiry
        if self.topic_alias_maximum is not None:
            p.TopicAliasMaximum = self.topic_alias_maximum
        try:
            self.mqttc.connect(HOST, port, keepalive=keepalive, clean_start=self.clean_start, properties=p)
        except OSError as e:
            fail("%s: cannot connect to %s:%d: %s" % (self.id, HOST, port, e))
        self.mqttc.loop_start()
        check(self.connected.wait(WAIT), "%s: no CONNACK within %ss" % (self.id, WAIT))
        sp, rc, _ = self.connack
        check(not rc.is_failure, "%s: CONNACK refused: %s" % (self.id, rc))
        return bool(sp)

    def subscribe(self, topic, qos, **options):
        opts = SubscribeOptions(qos=qos, **options)
        rc, mid = self.mqttc.subscribe(topic, options=opts)
        check(rc == mqtt.MQTT_ERR_SUCCESS, "%s: subscribe failed to send: %s" % (self.id, rc))
        with self.suback_cv:
            ok = self.suback_cv.wait_for(lambda: mid in self.subacks, timeout=WAIT)
        check(ok, "%s: no SUBACK for %s" % (self.id, topic))
        return self.subacks[mid]

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.mqttc.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(timeout=WAIT)
        check(info.is_published(), "%s: publish to %s (QoS %d) not completed" % (self.id, topic, qos))

    def get(self, what="a message", timeout=WAIT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            fail("%s: expected %s within %ss" % (self.id, what, timeout))

    def poll(self, timeout):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def expect_none(self, seconds, what="message"):
        msg = self.poll(seconds)
        if msg is not None:
            fail("%s: unexpected %s on %s: %r" % (self.id, what, msg.topic, msg.payload))

    def disconnect(self):
        self.mqttc.disconnect()
        self.mqttc.loop_stop()


def user_properties(msg):
    """The message's user properties as a list of (key, value), in order."""
    p = msg.properties
    if p is None or not hasattr(p, "UserProperty"):
        return []
    return list(p.UserProperty)
