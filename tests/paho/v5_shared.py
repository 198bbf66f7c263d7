"""Shared subscription through paho in MQTT 5.0 (§4.8.2): two clients on
$share/workers/paho5/jobs split 40 QoS 1 messages: each gets some, every
message is delivered exactly once."""

import time

from pahoutil import check, port_from_argv, watchdog
from v5_util import Client5

N = 40
port = port_from_argv()
watchdog(30)

workers = [Client5("paho5-worker-%d" % i) for i in range(2)]
for w in workers:
    w.connect(port)
    check(w.subscribe("$share/workers/paho5/jobs", 1) == [1], "%s: SUBACK" % w.id)

pub = Client5("paho5-boss")
pub.connect(port)
for i in range(N):
    pub.publish("paho5/jobs", "job %d" % i, qos=1)

got = [[], []]
deadline = time.monotonic() + 10
while sum(len(g) for g in got) < N and time.monotonic() < deadline:
    for i, w in enumerate(workers):
        msg = w.poll(0.02)
        if msg is not None:
            check(msg.topic == "paho5/jobs", "%s: topic %s" % (w.id, msg.topic))
            got[i].append(msg.payload.decode())

everything = sorted(got[0] + got[1])
check(len(everything) == N, "expected %d deliveries, got %d: %r" % (N, len(everything), got))
check(len(set(everything)) == N, "duplicates: %r" % got)
for i, g in enumerate(got):
    check(len(g) > 0, "worker %d got nothing: %r" % (i, got))
print("split: %d / %d" % (len(got[0]), len(got[1])))
for w in workers:
    w.expect_none(0.1)
    w.disconnect()
pub.disconnect()
print("OK")
