"""paho-mqtt over TLS, WebSockets or both (tests/e2e_tls.rs, tests/e2e_ws.rs).

Usage: transport.py PORT MODE [CAFILE] with MODE tcp, tls, ws or wss; tls
and wss check the server certificate against CAFILE. A subscriber and a
publisher both use MODE: messages at QoS 0, 1 and 2, small and large (a
100 KB payload spans several TLS records and a long WebSocket frame), must
arrive intact and in order."""

import sys

from pahoutil import Client, check, fail, port_from_argv, watchdog

port = port_from_argv()
mode = sys.argv[2] if len(sys.argv) > 2 else fail("missing MODE")
cafile = sys.argv[3] if len(sys.argv) > 3 else None
watchdog(40)


def client(name):
    c = Client(name, transport="websockets" if mode in ("ws", "wss") else "tcp")
    if mode in ("ws", "wss"):
        c.mqttc.ws_set_options(path="/mqtt")
    if mode in ("tls", "wss"):
        check(cafile is not None, "tls needs CAFILE")
        c.mqttc.tls_set(ca_certs=cafile)
    return c


sub = client("paho-%s-sub" % mode)
sub.connect(port)
pub = client("paho-%s-pub" % mode)
pub.connect(port)
topic = "paho/%s" % mode
check(sub.subscribe(topic + "/#", 2) == [2], "SUBACK")
big = bytes(i % 251 for i in range(100_000))
sent = []
for qos in (0, 1, 2):
    for i in range(20):
        payload = ("%d:%d" % (qos, i)).encode()
        pub.publish("%s/%d" % (topic, qos), payload, qos=qos)
        sent.append(payload)
    pub.publish("%s/%d" % (topic, qos), big, qos=qos)
    sent.append(big)
for i, want in enumerate(sent):
    msg = sub.get("message %d of %d" % (i, len(sent)))
    check(msg.payload == want, "message %d: %d bytes, expected %d" % (i, len(msg.payload), len(want)))
sub.expect_none(0.1)
pub.disconnect()
sub.disconnect()
print("OK: %d messages over %s" % (len(sent), mode))
