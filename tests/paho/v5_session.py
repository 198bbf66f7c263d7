"""MQTT 5.0 sessions through paho: clean_start=False with Session Expiry
Interval 60 keeps the session across a disconnect [MQTT-3.1.2-23]; QoS 1
messages published meanwhile arrive on reconnect, in order, with session
present = 1 [MQTT-3.2.2-2]; clean_start=True discards it [MQTT-3.1.2-4]."""

from pahoutil import check, port_from_argv, watchdog
from v5_util import Client5

port = port_from_argv()
watchdog(30)
c = Client5("paho5-persistent", clean_start=False, session_expiry=60)
check(not c.connect(port), "fresh client id: session present must be 0")
c.subscribe("paho5/sess/t", 1)
c.disconnect()

pub = Client5("paho5-sess-pub")
pub.connect(port)
for i in range(10):
    pub.publish("paho5/sess/t", "offline %d" % i, qos=1)
pub.disconnect()

c = Client5("paho5-persistent", clean_start=False, session_expiry=60)
check(c.connect(port), "session present must be 1 on reconnect")
for i in range(10):
    msg = c.get("queued message %d" % i)
    check(msg.payload == ("offline %d" % i).encode(), "queued message %d: %r" % (i, msg.payload))
    check(msg.qos == 1, "queued message at QoS %d" % msg.qos)
c.disconnect()

c = Client5("paho5-persistent", clean_start=True)
check(not c.connect(port), "clean start: session present must be 0")
c.disconnect()
print("OK")
