"""Persistent session through paho: clean_session=False, subscribe QoS 1,
disconnect; messages published meanwhile arrive on reconnect with
session present = 1 [MQTT-3.1.2-5], [MQTT-3.2.2-2]."""

from pahoutil import Client, check, port_from_argv, watchdog

port = port_from_argv()
watchdog(30)
c = Client("paho-persistent", clean_session=False)
check(not c.connect(port), "fresh client id: session present must be 0")
c.subscribe("paho/sess/t", 1)
c.disconnect()

pub = Client("paho-sess-pub")
pub.connect(port)
for i in range(10):
    pub.publish("paho/sess/t", "offline %d" % i, qos=1)
pub.disconnect()

c = Client("paho-persistent", clean_session=False)
check(c.connect(port), "session present must be 1 on reconnect")
for i in range(10):
    msg = c.get("queued message %d" % i)
    check(msg.payload == ("offline %d" % i).encode(), "queued message %d: %r" % (i, msg.payload))
    check(msg.qos == 1, "queued message at QoS %d" % msg.qos)
c.disconnect()

c = Client("paho-persistent", clean_session=True)
check(not c.connect(port), "clean session: session present must be 0")
c.disconnect()
print("OK")
