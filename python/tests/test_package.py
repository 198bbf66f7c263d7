"""The installed `boxmq` wheel, end to end: the button dashboard against
mosquitto_pub and paho-mqtt over TCP, the lifecycle, errors, and the type
stub against the module.

Run by tests/python.rs in a fresh venv where the wheel is installed:

    python -I python/tests/test_package.py

Needs mosquitto_pub (or $MOSQUITTO_PUB) and paho-mqtt 2. Every broker
listens on 127.0.0.1 on a port the system picks.
"""

import ast
import faulthandler
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import unittest

import boxmq
import paho.mqtt.client as mqtt

# Nothing here should take long; a hang prints every thread's stack and exits.
faulthandler.dump_traceback_later(120, exit=True)

MOSQUITTO_PUB = os.environ.get("MOSQUITTO_PUB", "mosquitto_pub")
BUTTONS = "shellies/+/input_event/0"
BUTTON = "shellybutton1-A4CF12F45A10"
TOPIC = f"shellies/{BUTTON}/input_event/0"
WAIT = 10.0
PRESSES = {"S": "short press", "SS": "double press", "SSS": "triple press", "L": "long press"}


def describe(msg):
    """One dashboard line for a button message, as examples/c prints it."""
    device = msg.topic.split("/")[1]
    try:
        event = json.loads(msg.payload)
        kind, count = event["event"], int(event["event_cnt"])
    except (ValueError, KeyError, TypeError):
        return f'{msg.topic}: unreadable event "{msg.payload.decode(errors="replace")}"'
    return f"{device}: {PRESSES.get(kind, 'event')} ({kind}), count {count}"


def press(port, payload, qos=0, retain=False):
    """A Shelly button press, as the button sends it: over TCP."""
    cmd = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-q", str(qos), "-t", TOPIC, "-m", payload]
    if retain:
        cmd.append("-r")
    subprocess.run(cmd, check=True, timeout=WAIT)


class PahoClient:
    """A paho-mqtt network client whose messages land in a queue."""

    def __init__(self, port, client_id):
        self.messages = queue.Queue()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = lambda _c, _u, m: self.messages.put(m)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def subscribe(self, topic, qos):
        self.subscribed.clear()
        self.client.subscribe(topic, qos)
        assert self.subscribed.wait(WAIT), "no SUBACK"

    def next(self):
        return self.messages.get(timeout=WAIT)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class Dashboard(unittest.TestCase):
    def test_the_issue_example_prints_presses_from_mosquitto_pub(self):
        b = boxmq.Broker(port=0)
        self.assertEqual(b.state, "Init")
        b.start()
        self.assertEqual(b.state, "Running")
        with b:
            self.assertEqual(b.addresses, [("127.0.0.1", b.port)])
            lines = []
            presses = b.client("dash").subscribe(BUTTONS, qos=2)
            press(b.port, '{"event":"S","event_cnt":3}', qos=0)
            press(b.port, '{ "event_cnt" : 7 , "event" : "SS" }', qos=1)
            press(b.port, '{"event":"L","event_cnt":8}', qos=2)
            press(b.port, "not json")
            for msg in presses:
                lines.append((describe(msg), msg.qos, msg.retain))
                if len(lines) == 4:
                    break
            self.assertEqual(
                lines,
                [
                    (f"{BUTTON}: short press (S), count 3", 0, False),
                    (f"{BUTTON}: double press (SS), count 7", 1, False),
                    (f"{BUTTON}: long press (L), count 8", 2, False),
                    (f'{TOPIC}: unreadable event "not json"', 0, False),
                ],
            )
        self.assertEqual(b.state, "Stopped")
        # The broker stopped: iteration ends, and recv says so.
        self.assertEqual(list(presses), [])
        with self.assertRaises(boxmq.BoxmqError):
            presses.recv(timeout=0)

    def test_the_example_prints_presses_and_stops_on_sigint(self):
        example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "button_dashboard.py")
        proc = subprocess.Popen(
            [sys.executable, "-I", example, "0"], stdout=subprocess.PIPE, text=True
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in proc.stdout], daemon=True).start()
        try:
            self.assertEqual(lines.get(timeout=WAIT), "state: Init")
            self.assertEqual(lines.get(timeout=WAIT), "state: Running")
            listening = lines.get(timeout=WAIT)
            self.assertTrue(listening.startswith("listening on 127.0.0.1:"), listening)
            port = int(listening.rsplit(":", 1)[1])
            self.assertEqual(lines.get(timeout=WAIT), f"waiting for presses on {BUTTONS}")
            press(port, '{"event":"S","event_cnt":3}')
            self.assertEqual(lines.get(timeout=WAIT), f"{BUTTON}: short press (S), count 3")
            press(port, '{ "event_cnt" : 7 , "event" : "SS" }', qos=2)
            self.assertEqual(lines.get(timeout=WAIT), f"{BUTTON}: double press (SS), count 7")
            press(port, "not json", qos=1)
            self.assertEqual(lines.get(timeout=WAIT), f'{TOPIC}: unreadable event "not json"')
            proc.send_signal(signal.SIGINT)
            # A stop takes milliseconds; the broker's own stop gives up after
            # 10 s, so wait longer than that, and on a busy machine.
            self.assertEqual(lines.get(timeout=3 * WAIT), "state: Stopped")
            self.assertEqual(proc.wait(timeout=WAIT), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()

    def test_paho_and_in_process_clients_see_each_other(self):
        with boxmq.Broker(port=0) as b:
            dash = b.client("dash")
            sub = dash.subscribe(BUTTONS, qos=2)
            paho = PahoClient(b.port, "paho-dash")
            try:
                paho.subscribe("shellies/#", 2)
                # In-process publish, network subscriber, every QoS.
                for qos in (0, 1, 2):
                    dash.publish(TOPIC, f'{{"event":"S","event_cnt":{qos}}}', qos=qos)
                    m = paho.next()
                    self.assertEqual((m.topic, m.qos), (TOPIC, qos))
                    self.assertEqual(json.loads(m.payload)["event_cnt"], qos)
                    # ...and the in-process subscription got it too.
                    got = sub.recv(timeout=WAIT)
                    self.assertEqual((got.topic, got.qos), (TOPIC, qos))
                # A retained QoS 2 press from paho, over TCP.
                info = paho.client.publish(TOPIC, b'{"event":"SS","event_cnt":9}', qos=2, retain=True)
                info.wait_for_publish(WAIT)
                self.assertEqual(paho.next().payload, b'{"event":"SS","event_cnt":9}')
                got = sub.recv(timeout=WAIT)
                self.assertEqual((got.payload, got.qos, got.retain), (b'{"event":"SS","event_cnt":9}', 2, False))
                # A later subscription gets it as retained, at its own QoS.
                with b.client().subscribe(TOPIC, qos=1) as late:
                    got = late.recv(timeout=WAIT)
                    self.assertEqual((describe(got), got.qos, got.retain), (f"{BUTTON}: double press (SS), count 9", 1, True))
            finally:
                paho.close()

    def test_user_properties_both_ways_with_a_paho_5_client(self):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        with boxmq.Broker(port=0) as b:
            dash = b.client("dash5")
            sub = dash.subscribe("props/in", qos=1)
            paho = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho5", protocol=mqtt.MQTTv5)
            got = queue.Queue()
            subscribed = threading.Event()
            paho.on_message = lambda _c, _u, m: got.put(m)
            paho.on_subscribe = lambda *_: subscribed.set()
            paho.connect("127.0.0.1", b.port)
            paho.loop_start()
            try:
                paho.subscribe("props/out", 1)
                self.assertTrue(subscribed.wait(WAIT), "no SUBACK")
                props = Properties(PacketTypes.PUBLISH)
                props.UserProperty = [("site", "hall"), ("site", "door")]
                paho.publish("props/in", b"x", qos=1, properties=props).wait_for_publish(WAIT)
                m = sub.recv(timeout=WAIT)
                self.assertEqual(m.user_properties, [("site", "hall"), ("site", "door")])
                dash.publish("props/out", "y", qos=1, user_properties=[("from", "dash")])
                out = got.get(timeout=WAIT)
                self.assertEqual(list(out.properties.UserProperty), [("from", "dash")])
                with self.assertRaises(boxmq.BoxmqError):
                    dash.publish("props/out", "z", user_properties=[("bad\x01", "v")])
            finally:
                paho.disconnect()
                paho.loop_stop()

    def test_config_lines_and_stats(self):
        lines = ["listener 0 127.0.0.1", "allow_anonymous true", "max_queued_messages 100"]
        with boxmq.Broker(config=lines) as b, boxmq.Broker(config="\n".join(lines)) as b2:
            self.assertNotEqual(b.port, b2.port)
            before = b.stats()
            self.assertEqual(
                set(before),
                {
                    "clients_connected", "clients_maximum", "sessions", "messages_received",
                    "messages_sent", "bytes_received", "bytes_sent", "publish_dropped",
                    "retained_refused", "retained_messages", "retained_bytes", "subscriptions",
                },
            )
            press(b.port, '{"event":"S","event_cnt":1}')
            # mosquitto_pub has gone when it exits, its message counted.
            deadline = time.monotonic() + WAIT
            while b.stats()["messages_received"] == before["messages_received"]:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            self.assertTrue(all(isinstance(v, int) and v >= 0 for v in b.stats().values()))

    def test_a_close_from_another_thread_ends_the_iteration(self):
        with boxmq.Broker(port=0) as b:
            sub = b.client("dash").subscribe(BUTTONS)
            seen = []
            reader = threading.Thread(target=lambda: seen.extend(sub))
            reader.start()
            press(b.port, '{"event":"S","event_cnt":1}')
            deadline = time.monotonic() + WAIT
            while not seen:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            sub.close()
            reader.join(WAIT)
            self.assertFalse(reader.is_alive())
            self.assertEqual([m.topic for m in seen], [TOPIC])
            self.assertEqual(b.stats()["subscriptions"], 0)


class Errors(unittest.TestCase):
    def test_a_port_in_use_fails_the_start_with_the_reason(self):
        with boxmq.Broker(port=0) as b:
            other = boxmq.Broker(port=b.port)
            with self.assertRaises(boxmq.BoxmqError) as caught:
                other.start()
            self.assertIn("cannot listen on 127.0.0.1:", str(caught.exception))
            self.assertEqual(other.state, "Failed")
            self.assertIn("cannot listen", other.failure)
            with self.assertRaises(boxmq.BoxmqError):
                other.client("x")
            port = b.port
        # Stopped: the port is free again, and a failed broker may retry.
        self.assertIsNone(b.failure)
        other.start()
        self.assertEqual((other.state, other.port), ("Running", port))
        other.stop()
        other.stop()
        self.assertEqual(other.state, "Stopped")

    def test_bad_arguments_raise_and_the_client_goes_on(self):
        with self.assertRaises(boxmq.BoxmqError) as caught:
            boxmq.Broker(config="listener 0 127.0.0.1\nmax_inflight lots")
        self.assertIn("config:2", str(caught.exception))
        with self.assertRaises(boxmq.BoxmqError):
            boxmq.Broker(port=0, host="not an address")
        with self.assertRaises(TypeError):
            boxmq.Broker(config=42)
        with boxmq.Broker(port=0) as b:
            dash = b.client("dash")
            sub = dash.subscribe("a/#", qos=0)
            for bad in ("a/+", "", "a/#/b"):
                with self.assertRaises(boxmq.BoxmqError):
                    dash.publish(bad, b"x")
            with self.assertRaises(boxmq.BoxmqError):
                dash.subscribe("a/#/b")
            with self.assertRaises(ValueError):
                dash.publish("a/b", b"x", qos=3)
            with self.assertRaises(TypeError):
                dash.publish("a/b", 12)
            self.assertIsNone(sub.recv(timeout=0.05))
            dash.publish("a/b", bytearray(b"still here"))
            self.assertEqual(sub.recv(timeout=WAIT).payload, b"still here")
        with self.assertRaises(boxmq.BoxmqError):
            dash.publish("a/b", b"x")
        with self.assertRaises(boxmq.BoxmqError):
            b.port


class Hooks(unittest.TestCase):
    """Application hooks and events (docs/EMBEDDING.md, "Application hooks")."""

    def test_the_dashboard_lets_known_buttons_in_and_shows_them_connected(self):
        users = {"button-door": b"d00r"}
        seen = []

        def on_connect(req):
            seen.append((req.client_id, req.username, req.password, req.address, req.protocol))
            return users.get(req.username) == req.password

        def on_publish(msg):
            if not msg.topic.startswith("shellies/"):
                return True
            try:
                json.loads(msg.payload)
                return True
            except ValueError:
                return False

        def pub(user, password, payload):
            cmd = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-i", user,
                   "-u", user, "-P", password, "-t", TOPIC, "-m", payload]
            return subprocess.run(cmd, timeout=WAIT, capture_output=True).returncode

        with boxmq.Broker(port=0, on_connect=on_connect, on_publish=on_publish) as broker:
            events = broker.events()
            sub = broker.client("dash").subscribe(BUTTONS)
            self.assertNotEqual(pub("button-garage", "x", '{"event":"S","event_cnt":1}'), 0)
            self.assertEqual(pub("button-door", "d00r", "not json"), 0)  # acknowledged
            self.assertEqual(pub("button-door", "d00r", '{"event":"S","event_cnt":2}'), 0)
            msg = sub.recv(timeout=WAIT)
            self.assertEqual(json.loads(msg.payload)["event_cnt"], 2, "the non-JSON one was not routed")
            self.assertEqual(seen[0][:3], ("button-garage", "button-garage", b"x"))
            self.assertTrue(seen[0][3].startswith("127.0.0.1:"))
            self.assertEqual(seen[0][4], 4)
            got = []
            while True:
                e = events.recv(timeout=1.0)
                if e is None:
                    break
                got.append((e.kind, e.client_id, e.topic, e.reason))
            self.assertEqual(
                got,
                [("connected", "button-door", None, None), ("disconnected", "button-door", None, "clean")] * 2,
            )
            self.assertEqual(events.lost, 0)

    def test_a_hook_that_raises_refuses_and_logs_the_traceback(self):
        import logging

        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record)

        logger = logging.getLogger("boxmq")
        handler = Keep()
        logger.addHandler(handler)
        try:
            def on_subscribe(sub):
                raise RuntimeError(f"no {sub.topic} for you")

            with boxmq.Broker(port=0, on_subscribe=on_subscribe) as broker:
                c = PahoClient(broker.port, "nosy")
                try:
                    granted = queue.Queue()
                    c.client.on_subscribe = lambda cl, ud, mid, codes, props: granted.put(codes)
                    c.client.subscribe("secret/#", 1)
                    codes = granted.get(timeout=WAIT)
                    self.assertTrue(codes[0].is_failure, codes)
                finally:
                    c.close()
        finally:
            logger.removeHandler(handler)
        self.assertTrue(records, "nothing logged")
        self.assertIn("on_subscribe raised", records[0].getMessage())
        self.assertIsNotNone(records[0].exc_info)
        self.assertIn("no secret/# for you", str(records[0].exc_info[1]))


class Package(unittest.TestCase):
    def test_the_wheel_carries_the_stub_and_py_typed(self):
        here = os.path.dirname(boxmq.__file__)
        self.assertIn("site-packages", here, "boxmq must come from the installed wheel")
        self.assertTrue(os.path.exists(os.path.join(here, "py.typed")))
        self.assertTrue(os.path.exists(os.path.join(here, "_boxmq.pyi")))
        self.assertTrue(boxmq.__version__)
        self.assertTrue(issubclass(boxmq.BoxmqError, Exception))

    def test_the_stub_names_what_the_module_has(self):
        with open(os.path.join(os.path.dirname(boxmq.__file__), "_boxmq.pyi")) as f:
            stub = ast.parse(f.read())
        classes = {n.name: n for n in stub.body if isinstance(n, ast.ClassDef)}
        native = boxmq._boxmq
        runtime = {n for n, v in vars(native).items() if isinstance(v, type)}
        self.assertEqual(set(classes), runtime)
        self.assertEqual(set(boxmq.__all__) - {"__version__"}, runtime)
        for name, node in classes.items():
            cls = getattr(native, name)
            if issubclass(cls, BaseException):
                continue
            with self.subTest(cls=name):
                declared = {}
                for d in node.body:
                    if isinstance(d, ast.FunctionDef):
                        prop = any(isinstance(x, ast.Name) and x.id == "property" for x in d.decorator_list)
                        declared[d.name] = prop
                public = {n for n in vars(cls) if not n.startswith("_")}
                self.assertEqual({n for n in declared if not n.startswith("_")}, public)
                for n, prop in declared.items():
                    if n == "__init__":
                        continue
                    attr = vars(cls).get(n)
                    self.assertIsNotNone(attr, f"{name}.{n}")
                    self.assertEqual(prop, not callable(attr), f"{name}.{n}: property or method")


if __name__ == "__main__":
    unittest.main(verbosity=2)
