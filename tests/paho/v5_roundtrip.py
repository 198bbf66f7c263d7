"""MQTT 5.0 through paho: 100 messages at each QoS 0/1/2, all received in
order at that QoS ([MQTT-4.6.0-6] ordered topics, [MQTT-3.8.4-8] delivered
QoS = min(published, granted))."""

from pahoutil import check, port_from_argv, watchdog
from v5_util import Client5

COUNT = 100

port = port_from_argv()
watchdog(40)
sub = Client5("paho5-rt-sub")
sub.connect(port)
pub = Client5("paho5-rt-pub")
pub.connect(port)

for qos in (0, 1, 2):
    topic = "paho5/rt/q%d" % qos
    granted = sub.subscribe(topic, qos)
    check(granted == [qos], "granted %r for QoS %d" % (granted, qos))
    for i in range(COUNT):
        pub.mqttc.publish(topic, "%d:%d" % (qos, i), qos=qos)
    for i in range(COUNT):
        msg = sub.get("message %d of %d at QoS %d" % (i, COUNT, qos))
        want = "%d:%d" % (qos, i)
        got = msg.payload.decode()
        check(msg.topic == topic and got == want, "QoS %d: expected %s on %s, got %s on %s" % (qos, want, topic, got, msg.topic))
        check(msg.qos == qos, "QoS %d message %d delivered at QoS %d" % (qos, i, msg.qos))
    print("QoS %d: %d messages in order" % (qos, COUNT))

sub.expect_none(0.1)
pub.disconnect()
sub.disconnect()
print("OK")
