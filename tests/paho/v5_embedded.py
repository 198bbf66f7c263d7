"""The network half of tests/embed_v5.rs: a paho MQTT 5.0 client and an
application's in-process client (which speaks 5.0) exchange a request and
its reply, each side seeing the other's properties.

1. Subscribes to embed5/reply (QoS 1).
2. Publishes a request to embed5/request (QoS 1) with two User Properties
   of the same name, Content Type, Response Topic, Correlation Data,
   Payload Format Indicator 1 and a Message Expiry Interval
   [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20].
3. Expects the application's reply on embed5/reply, with the application's
   User Property and the request's Correlation Data and Content Type.
"""

from paho.mqtt.packettypes import PacketTypes

from pahoutil import check, port_from_argv, watchdog
from v5_util import Client5, props, user_properties

port = port_from_argv()
watchdog(30)

c = Client5("paho5-embedded")
c.connect(port)
check(c.subscribe("embed5/reply", 1) == [1], "SUBACK for embed5/reply")
request = props(
    PacketTypes.PUBLISH,
    ContentType="application/json",
    ResponseTopic="embed5/reply",
    CorrelationData=b"\x01\x02\x03",
    PayloadFormatIndicator=1,
    MessageExpiryInterval=300,
)
request.UserProperty = [("origin", "paho"), ("origin", "second")]
c.publish("embed5/request", '{"ask":"state"}', qos=1, properties=request)

msg = c.get("the application's reply")
check(msg.topic == "embed5/reply", "reply topic %s" % msg.topic)
check(msg.payload == b'{"state":"Running"}', "reply payload %r" % msg.payload)
check(
    user_properties(msg) == [("from", "dashboard")],
    "reply user properties %r" % user_properties(msg),
)
p = msg.properties
check(getattr(p, "CorrelationData", None) == b"\x01\x02\x03", "reply correlation data")
check(getattr(p, "ContentType", None) == "application/json", "reply content type")
c.disconnect()
print("OK")
