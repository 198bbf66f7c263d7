"""[MQTT-3.8.4-6] delivered QoS = min(published QoS, granted QoS), for every
combination, seen from paho's on_message."""

from pahoutil import Client, check, port_from_argv, watchdog

port = port_from_argv()
watchdog(30)
subs = {}
for sq in (0, 1, 2):
    c = Client("paho-mx-sub%d" % sq)
    c.connect(port)
    check(c.subscribe("paho/mx/s%d/+" % sq, sq) == [sq], "granted QoS for %d" % sq)
    subs[sq] = c
pub = Client("paho-mx-pub")
pub.connect(port)
for sq in (0, 1, 2):
    for pq in (0, 1, 2):
        pub.publish("paho/mx/s%d/p%d" % (sq, pq), "x", qos=pq)
for sq, c in subs.items():
    seen = {}
    for _ in range(3):
        msg = c.get("a message for the QoS %d subscription" % sq)
        seen[msg.topic] = msg.qos
    for pq in (0, 1, 2):
        topic = "paho/mx/s%d/p%d" % (sq, pq)
        check(topic in seen, "missing %s, got %r" % (topic, seen))
        check(seen[topic] == min(sq, pq), "%s delivered at QoS %d, expected %d" % (topic, seen[topic], min(sq, pq)))
    c.disconnect()
pub.disconnect()
print("OK")
