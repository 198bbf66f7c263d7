"""MQTT 5.0 request/response through paho (§4.10): the requester sends
Response Topic, Correlation Data and three User Properties (a repeated key
included); the responder gets them unaltered and in order ([MQTT-3.3.2-15],
[MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-18]) and answers on the
Response Topic echoing the Correlation Data; the requester matches every
answer to its request."""

from paho.mqtt.packettypes import PacketTypes

from pahoutil import check, port_from_argv, watchdog
from v5_util import Client5, props, user_properties

N = 10
REQ = "paho5/svc/req"
USER = [("trace", "1"), ("tenant", "box"), ("trace", "2")]

port = port_from_argv()
watchdog(30)

responder = Client5("paho5-responder")
responder.connect(port)
responder.subscribe(REQ, 1)

requester = Client5("paho5-requester")
requester.connect(port)
reply_to = "paho5/svc/resp/paho5-requester"
requester.subscribe(reply_to, 1)

for i in range(N):
    p = props(
        PacketTypes.PUBLISH,
        ResponseTopic=reply_to,
        CorrelationData=b"corr-\x00\xff-%d" % i,
        ContentType="text/plain",
        UserProperty=USER,
    )
    requester.publish(REQ, "question %d" % i, qos=1, properties=p)

# The responder answers each request as it arrives.
for i in range(N):
    msg = responder.get("request %d" % i)
    mp = msg.properties
    check(msg.payload.decode() == "question %d" % i, "request %d payload %r" % (i, msg.payload))
    check(getattr(mp, "ResponseTopic", None) == reply_to, "request %d response topic %r" % (i, getattr(mp, "ResponseTopic", None)))
    check(getattr(mp, "CorrelationData", None) == b"corr-\x00\xff-%d" % i, "request %d correlation %r" % (i, getattr(mp, "CorrelationData", None)))
    check(getattr(mp, "ContentType", None) == "text/plain", "request %d content type" % i)
    check(user_properties(msg) == USER, "request %d user properties %r" % (i, user_properties(msg)))
    answer = props(PacketTypes.PUBLISH, CorrelationData=mp.CorrelationData, UserProperty=[("handled-by", "responder")])
    responder.publish(mp.ResponseTopic, "answer to " + msg.payload.decode(), qos=1, properties=answer)

for i in range(N):
    msg = requester.get("response %d" % i)
    corr = msg.properties.CorrelationData
    check(corr == b"corr-\x00\xff-%d" % i, "response %d correlation %r" % (i, corr))
    check(msg.payload.decode() == "answer to question %d" % i, "response %d payload %r" % (i, msg.payload))
    check(user_properties(msg) == [("handled-by", "responder")], "response %d user properties" % i)

requester.expect_none(0.1)
requester.disconnect()
responder.disconnect()
print("OK")
