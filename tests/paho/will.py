"""Will on unexpected disconnect [MQTT-3.1.2-8]: a paho client with a will
has its socket shut down without DISCONNECT; the watcher gets the will. A
second client that disconnects cleanly sends no will [MQTT-3.1.2-10]."""

import socket

from pahoutil import Client, check, port_from_argv, watchdog

port = port_from_argv()
watchdog(30)
watcher = Client("paho-will-watcher")
watcher.connect(port)
watcher.subscribe("paho/will/#", 1)

polite = Client("paho-will-polite").will("paho/will/polite", "should not appear", qos=1)
polite.connect(port)
polite.disconnect()

victim = Client("paho-will-victim").will("paho/will/victim", "victim lost", qos=1, retain=False)
victim.connect(port, threaded=False)
sock = victim.mqttc.socket()
check(sock is not None, "no socket")
sock.shutdown(socket.SHUT_RDWR)
sock.close()

msg = watcher.get("the will")
check(msg.topic == "paho/will/victim", "expected the victim's will first, got %s %r" % (msg.topic, msg.payload))
check(msg.payload == b"victim lost" and msg.qos == 1, "will %r at QoS %d" % (msg.payload, msg.qos))
watcher.expect_none(0.2, "will")
watcher.disconnect()
print("OK")
