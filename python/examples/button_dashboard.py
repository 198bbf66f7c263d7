"""A dashboard with the broker inside, in Python: Shelly buttons connect over
TCP and the program prints every press, with no separate MQTT server. The
Python twin of examples/button_dashboard.rs and examples/c/button_dashboard.c,
with the same output.

    python3 button_dashboard.py 1883
    mosquitto_pub -p 1883 -t shellies/shellybutton1-A4CF12F45A10/input_event/0 \\
        -m '{"event":"S","event_cnt":3}'

prints "shellybutton1-A4CF12F45A10: short press (S), count 3". Ctrl-C (or
SIGTERM) stops it cleanly.
"""

import json
import signal
import sys

import boxmq

BUTTONS = "shellies/+/input_event/0"
KINDS = {
    "S": "short press",
    "L": "long press",
    "SS": "double press",
    "SSS": "triple press",
    "SL": "short then long press",
    "LS": "long then short press",
}


def describe(msg: boxmq.Message) -> str:
    """'<device>: <kind> (<code>), count <n>', or why the press is unreadable."""
    parts = msg.topic.split("/")
    try:
        event = json.loads(msg.payload)
        code, count = event["event"], event["event_cnt"]
        if len(parts) != 4 or not parts[1] or not isinstance(code, str) or type(count) is not int or count < 0:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return f'{msg.topic}: unreadable event "{msg.payload.decode(errors="replace")}"'
    return f"{parts[1]}: {KINDS.get(code, 'press')} ({code}), count {count}"


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 1883
    # Ctrl-C and SIGTERM both end the loop below with KeyboardInterrupt.
    # SIGINT is set too: Python leaves it ignored when it starts ignored, as
    # it does for a program started in the background by a script.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    broker = boxmq.Broker(config=[f"listener {port} 127.0.0.1", "persistence false"])
    print(f"state: {broker.state}", flush=True)
    try:
        broker.start()
    except boxmq.BoxmqError as e:
        print(f"state: {broker.state}: {broker.failure}", flush=True)
        print(f"button_dashboard: start: {e}", file=sys.stderr)
        return 1
    with broker:
        print(f"state: {broker.state}", flush=True)
        for host, bound in broker.addresses:
            print(f"listening on {host}:{bound}", flush=True)
        presses = broker.client("button-dashboard").subscribe(BUTTONS, qos=1)
        print(f"waiting for presses on {BUTTONS}", flush=True)
        try:
            for msg in presses:
                print(describe(msg), flush=True)
        except KeyboardInterrupt:
            pass
    print(f"state: {broker.state}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
