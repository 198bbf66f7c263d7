# Type hints of the native module boxmq._boxmq (python/src/lib.rs).
# tests/python.rs checks that the module and this file name the same
# classes, methods and properties.
from types import TracebackType
from typing import Any, Callable, Dict, Iterator, List, Literal, Optional, Sequence, Tuple, Type, Union

__version__: str

State = Literal["Init", "Running", "Stopped", "Failed"]

class BoxmqError(Exception):
    """Any error boxmq reports: configuration, bind, broker not running,
    invalid topic or filter, refused client, timeout, ..."""

class Broker:
    """An MQTT broker in this process. Built in state "Init"; `start` (or
    `with`) binds its listeners and runs it on a thread of its own. Dropping
    the last reference stops it. Safe to share between threads."""

    def __init__(
        self,
        port: Optional[int] = None,
        config: Union[str, Sequence[str], None] = None,
        host: str = "127.0.0.1",
        on_connect: Optional[Callable[[ConnectInfo], Any]] = None,
        on_publish: Optional[Callable[[PublishInfo], Any]] = None,
        on_subscribe: Optional[Callable[[SubscribeInfo], Any]] = None,
        hook_timeout: Optional[float] = None,
    ) -> None:
        """Listens on host:port (port 0: a free one, see `port`) and on the
        listeners of `config`, the lines of a boxmq config file (one string
        or a list of lines). With neither: 127.0.0.1:1883. Nothing is kept
        on disk unless `config` says "persistence true".

        The application decides with `on_connect(req)` (who may connect,
        after the password file), `on_publish(msg)` (what is routed, after
        the ACL) and `on_subscribe(sub)` (each filter of a SUBSCRIBE), for
        network clients: a truthy result accepts, a falsy one refuses
        (CONNACK 0x05 / 0x87; the message is not routed; SUBACK 0x80 /
        0x87). A hook that raises refuses, and the traceback is logged on
        the "boxmq" logger. Hooks run on the broker's hook threads (several
        clients' at once, each taking the GIL), never on the broker's, so a
        slow hook holds up only its own client; an answer later than
        `hook_timeout` seconds (default 5) refuses.

        Raises BoxmqError for an invalid config line (the message names
        it) or host."""
    def start(self) -> None:
        """Binds the listeners (here, so a port in use raises at once and
        the state becomes "Failed") and runs the broker. A stopped or
        failed broker may be started again. Raises BoxmqError."""
    def stop(self) -> None:
        """Stops gracefully: clients are disconnected, subscriptions end,
        the port is released. Waits at most 10 s. Harmless when stopped."""
    @property
    def state(self) -> State: ...
    @property
    def failure(self) -> Optional[str]:
        """Why the broker failed (state "Failed"), such as "cannot listen
        on 127.0.0.1:1883: Address already in use (os error 98)"; else None."""
    @property
    def addresses(self) -> List[Tuple[str, int]]:
        """The bound (host, port) of every listener. Raises BoxmqError when
        not running."""
    @property
    def port(self) -> int:
        """The bound port of the first listener (the real one when 0 was
        asked for). Raises BoxmqError when not running."""
    def stats(self) -> Dict[str, int]:
        """The broker's counters now: clients_connected, clients_maximum,
        sessions, messages_received, messages_sent, bytes_received,
        bytes_sent, publish_dropped, retained_refused, retained_messages,
        retained_bytes, subscriptions."""
    def events(self) -> Events:
        """What happens to the network clients, in order. Raises
        BoxmqError when not running."""
    def client(self, client_id: str = "") -> Client:
        """Connects an in-process client ("" : an id is assigned). Raises
        BoxmqError when not running or refused (max_sessions)."""
    def __enter__(self) -> "Broker":
        """Starts the broker unless it runs already."""
    def __exit__(
        self,
        ty: Optional[Type[BaseException]],
        value: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Stops the broker."""

class Client:
    """An in-process MQTT 3.1.1 client with a clean session: no socket,
    the same semantics as a network client. Safe to share between threads."""

    @property
    def client_id(self) -> str: ...
    def publish(
        self,
        topic: str,
        payload: Union[bytes, bytearray, str],
        qos: int = 0,
        retain: bool = False,
        user_properties: Optional[Sequence[Tuple[str, str]]] = None,
    ) -> None:
        """Publishes (str payloads as UTF-8); returns once the broker has
        routed the message (and stored it, with retain). user_properties,
        (name, value) pairs, reach MQTT 5.0 subscribers. Raises BoxmqError
        (invalid topic or property, too large, disconnected, not running),
        ValueError for a qos other than 0, 1, 2."""
    def subscribe(self, filter: str, qos: int = 1) -> Subscription:
        """Subscribes with maximum QoS qos; retained messages come first.
        Each subscription is a connection of its own and lives on after
        its client is gone. Raises BoxmqError (invalid filter, refused)."""

class Subscription:
    """The messages of one subscription, in order. Iterating blocks until
    the next message (Ctrl-C works) and ends when the broker stops or the
    subscription is closed. Several threads may read one subscription;
    each message goes to one of them."""

    @property
    def filter(self) -> str: ...
    def recv(self, timeout: Optional[float] = None) -> Optional[Message]:
        """The next message, waiting at most timeout seconds (None: for
        ever); None on timeout. Raises BoxmqError once the subscription has
        ended and is empty."""
    def close(self) -> None:
        """Unsubscribes; iteration ends. Harmless when closed."""
    def __iter__(self) -> Iterator[Message]: ...
    def __next__(self) -> Message: ...
    def __enter__(self) -> "Subscription": ...
    def __exit__(
        self,
        ty: Optional[Type[BaseException]],
        value: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Closes the subscription."""

class Message:
    """One message received. Immutable."""

    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def qos(self) -> int:
        """The QoS it was delivered with: the lower of the published and
        the subscribed one."""
    @property
    def retain(self) -> bool:
        """Set on a retained message sent because of the subscription."""
    @property
    def user_properties(self) -> List[Tuple[str, str]]:
        """MQTT 5.0 User Properties, in the order published (empty from a
        3.1.1 publisher)."""

class ConnectInfo:
    """What on_connect gets: a CONNECT from the network."""

    @property
    def client_id(self) -> str: ...
    @property
    def username(self) -> Optional[str]: ...
    @property
    def password(self) -> Optional[bytes]: ...
    @property
    def address(self) -> str:
        """The peer, "IP:port"."""
    @property
    def protocol(self) -> int:
        """3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0)."""
    @property
    def user_properties(self) -> List[Tuple[str, str]]:
        """MQTT 5.0 User Properties of the CONNECT, (name, value) in order."""

class PublishInfo:
    """What on_publish gets: a PUBLISH from the network."""

    @property
    def client_id(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def qos(self) -> int: ...
    @property
    def retain(self) -> bool: ...

class SubscribeInfo:
    """What on_subscribe gets: one filter of a SUBSCRIBE."""

    @property
    def client_id(self) -> str: ...
    @property
    def topic(self) -> str:
        """The topic filter."""
    @property
    def qos(self) -> int: ...

EventKind = Literal["connected", "disconnected", "subscribed", "unsubscribed", "dropped"]

class Event:
    """Something that happened to a network client."""

    @property
    def kind(self) -> EventKind: ...
    @property
    def client_id(self) -> str: ...
    @property
    def topic(self) -> Optional[str]:
        """The filter, for "subscribed" and "unsubscribed"."""
    @property
    def reason(self) -> Optional[str]:
        """For "disconnected": "clean", "keepalive", "taken over",
        "protocol error", "connection lost" or "shutdown"; for "dropped":
        "queue full"."""

class Events:
    """The broker's events, through a bounded channel (1024): events not
    taken in time are lost and counted, messages are never held back."""

    def recv(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, waiting at most `timeout` seconds (None: until
        one comes); None on timeout."""
    @property
    def lost(self) -> int:
        """Events lost so far."""
