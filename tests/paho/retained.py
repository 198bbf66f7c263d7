"""Retained messages through paho: stored and sent with retain=1 to a new
subscriber [MQTT-3.3.1-6]/[MQTT-3.3.1-8], sent with retain=0 to an existing
one [MQTT-3.3.1-9], removed by an empty retained payload [MQTT-3.3.1-10]."""

from pahoutil import Client, check, port_from_argv, watchdog

port = port_from_argv()
watchdog(30)
pub = Client("paho-ret-pub")
pub.connect(port)
pub.publish("paho/ret/a", "first", qos=1, retain=True)
pub.publish("paho/ret/a", "second", qos=1, retain=True)

s1 = Client("paho-ret-s1")
s1.connect(port)
s1.subscribe("paho/ret/#", 1)
msg = s1.get("the retained message")
check(msg.payload == b"second", "retained payload %r, expected the replacement" % msg.payload)
check(msg.retain, "retain flag must be 1 for a message sent on subscribe")

pub.publish("paho/ret/a", "live", qos=1, retain=True)
msg = s1.get("the live retained publish")
check(msg.payload == b"live" and not msg.retain, "live delivery %r retain=%s" % (msg.payload, msg.retain))

pub.publish("paho/ret/a", "", qos=1, retain=True)
msg = s1.get("the empty retained publish")
check(msg.payload == b"", "expected the zero-length message, got %r" % msg.payload)

s2 = Client("paho-ret-s2")
s2.connect(port)
s2.subscribe("paho/ret/#", 1)
pub.publish("paho/ret/marker", "m", qos=1)
msg = s2.get("the marker")
check(msg.topic == "paho/ret/marker", "a deleted retained message was delivered: %s %r" % (msg.topic, msg.payload))

for c in (pub, s1, s2):
    c.disconnect()
print("OK")
