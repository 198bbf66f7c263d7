"""boxmq: a small MQTT broker running inside your Python program.

Network clients (sensors, buttons, mosquitto_pub, paho-mqtt) connect to it
over TCP as to any MQTT broker; your program publishes and subscribes
in-process, without a socket::

    import boxmq

    with boxmq.Broker(port=1883) as broker:          # started; stopped on exit
        for msg in broker.client("dash").subscribe("shellies/+/input_event/0"):
            print(msg.topic, msg.payload.decode())

The broker runs on a thread of its own (named "boxmq"); every call here
releases the GIL while it waits for that thread. Errors raise BoxmqError
(bad arguments: ValueError or TypeError). See docs/EMBEDDING.md.
"""

from ._boxmq import (
    BoxmqError,
    Broker,
    Client,
    ConnectInfo,
    Event,
    Events,
    Message,
    PublishInfo,
    SubscribeInfo,
    Subscription,
    __version__,
)

__all__ = [
    "Broker",
    "BoxmqError",
    "Client",
    "ConnectInfo",
    "Event",
    "Events",
    "Message",
    "PublishInfo",
    "SubscribeInfo",
    "Subscription",
    "__version__",
]
