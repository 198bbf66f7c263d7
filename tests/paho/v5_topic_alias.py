"""MQTT 5.0 topic aliases from the broker, seen by paho (which hands an
aliased message on as it came: empty topic, Topic Alias property).

A client announcing Topic Alias Maximum 1 gets the first message on a topic
with its name and alias 1, the next ones with an empty name and the same
alias, at every QoS (§3.3.2.3.4, [MQTT-3.1.2-26]); a client announcing none
gets names only ([MQTT-3.1.2-27]); reconnected, the client is told the name
again ([MQTT-3.3.2-7])."""

from pahoutil import check, port_from_argv, watchdog
from v5_util import Client5

TOPIC = "paho5/alias/shellies/shellybutton1-A4CF12F45A10/input_event/0"

port = port_from_argv()
watchdog(40)


def alias_of(msg):
    return getattr(msg.properties, "TopicAlias", None) if msg.properties else None


aliased = Client5("paho5-alias-sub", topic_alias_maximum=1)
aliased.connect(port)
plain = Client5("paho5-alias-plain")
plain.connect(port)
pub = Client5("paho5-alias-pub")
pub.connect(port)
for c in (aliased, plain):
    check(c.subscribe(TOPIC, 2) == [2], "%s: subscription refused" % c.id)

for qos in (0, 1, 2):
    pub.publish(TOPIC, "press %d" % qos, qos=qos)
got = [aliased.get("message at QoS %d" % qos) for qos in (0, 1, 2)]
seen = [(m.topic, alias_of(m), m.payload.decode(), m.qos) for m in got]
check(seen[0] == (TOPIC, 1, "press 0", 0), "first message names the topic with alias 1: %r" % (seen[0],))
check(seen[1:] == [("", 1, "press 1", 1), ("", 1, "press 2", 2)], "later messages: empty name, alias 1: %r" % (seen[1:],))
for qos in (0, 1, 2):
    m = plain.get("message at QoS %d (no aliases)" % qos)
    check((m.topic, alias_of(m)) == (TOPIC, None), "client without aliases got %r alias %r" % (m.topic, alias_of(m)))
print("aliases: name once, then alias 1; none for the client that takes none")

aliased.disconnect()
again = Client5("paho5-alias-sub", topic_alias_maximum=1)
again.connect(port)
again.subscribe(TOPIC, 1)
pub.publish(TOPIC, "after reconnect", qos=1)
m = again.get("message after reconnect")
check((m.topic, alias_of(m)) == (TOPIC, 1), "new connection: name again, got %r alias %r" % (m.topic, alias_of(m)))
print("reconnected: the topic is named again")

for c in (again, plain, pub):
    c.disconnect()
print("OK")
