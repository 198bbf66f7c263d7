using System;
using System.Threading;

namespace BoxMq
{
    /// <summary>Where a broker is in its life.</summary>
    public enum BrokerState
    {
        /// <summary>Built, not started.</summary>
        Init = 0,
        /// <summary>The listeners are bound and the broker thread runs.</summary>
        Running = 1,
        /// <summary>Stopped by Stop or Dispose.</summary>
        Stopped = 2,
        /// <summary>Could not start (see FailureReason), or the loop failed. Start may be tried again.</summary>
        Failed = 3,
    }

    /// <summary>
    /// An MQTT broker inside this process: network clients connect to its
    /// listeners, the application publishes and subscribes in-process with
    /// <see cref="CreateClient"/>. It runs on a native thread of its own
    /// (named "boxmq"); no .NET code ever runs there. Every member may be
    /// called from any thread.
    /// </summary>
    public sealed class Broker : IDisposable
    {
        private readonly BrokerHandle handle;
        private readonly object hookLock = new object();
        private HookTarget hooks;
        private TimeSpan hookTimeout = TimeSpan.FromSeconds(5);

        /// <summary>
        /// A broker from config lines, as in boxmq.conf ("listener 1883
        /// 0.0.0.0\nmax_queued_messages 5000"; port 0 picks a free port).
        /// Null or "": 127.0.0.1:1883. Nothing is kept on disk unless the
        /// text says "persistence true". The state is Init.
        /// </summary>
        /// <exception cref="BoxMqException">Code Config: a bad line (the message says "config:LINE: ...").</exception>
        public Broker(string config)
        {
            BrokerHandle h;
            int rc = NativeMethods.boxmq_broker_new(Utf8.Encode(config, "config"), out h);
            if (rc < 0)
            {
                var e = NativeMethods.Error(rc);
                h.Dispose();
                throw e;
            }
            handle = h;
            Events = new BrokerEvents(this);
        }

        /// <summary>A broker on 127.0.0.1:1883.</summary>
        public Broker() : this(null)
        {
        }

        /// <summary>The version of the native library, such as "0.1.0".</summary>
        public static string NativeVersion
        {
            get { return Utf8.FromNul(NativeMethods.boxmq_version()); }
        }

        /// <summary>The state now. A disposed broker is Stopped.</summary>
        public BrokerState State
        {
            get
            {
                if (handle.IsClosed)
                {
                    return BrokerState.Stopped;
                }
                return (BrokerState)NativeMethods.Check(
                    NativeMethods.boxmq_broker_state(handle, null, UIntPtr.Zero));
            }
        }

        /// <summary>
        /// Why the broker is Failed, such as "cannot listen on
        /// 127.0.0.1:1883: Address already in use (os error 98)"; "" in the
        /// other states.
        /// </summary>
        public string FailureReason
        {
            get
            {
                if (handle.IsClosed)
                {
                    return string.Empty;
                }
                var buf = new byte[1024];
                NativeMethods.Check(
                    NativeMethods.boxmq_broker_state(handle, buf, (UIntPtr)buf.Length));
                return Utf8.FromBuffer(buf);
            }
        }

        /// <summary>
        /// Binds the listeners on the calling thread, then runs the broker on
        /// its own thread; returns once it is Running. A broker that stopped
        /// or failed may be started again.
        /// </summary>
        /// <exception cref="BoxMqException">
        /// Code Bind (the port is in use or not allowed; State becomes Failed
        /// and FailureReason says why), AlreadyRunning, Config, Persistence, Io.
        /// </exception>
        public void Start()
        {
            NativeMethods.Check(NativeMethods.boxmq_broker_start(Live()));
        }

        /// <summary>
        /// Stops gracefully: clients are disconnected, in-process
        /// subscriptions end, the listeners close (the port can be bound
        /// again at once). Waits up to 10 s for the broker thread. Harmless
        /// on a broker that is not running, and after Dispose.
        /// </summary>
        /// <exception cref="BoxMqException">Code Timeout.</exception>
        public void Stop()
        {
            if (handle.IsClosed)
            {
                return;
            }
            NativeMethods.Check(NativeMethods.boxmq_broker_stop(handle));
        }

        /// <summary>The bound port of the first listener (the real one when the config said 0).</summary>
        /// <exception cref="BoxMqException">Code NotRunning.</exception>
        public int Port
        {
            get { return NativeMethods.Check(NativeMethods.boxmq_broker_port(Live(), UIntPtr.Zero)); }
        }

        /// <summary>The bound addresses of all listeners, in config order ("127.0.0.1:1883", "[::1]:1883").</summary>
        /// <exception cref="BoxMqException">Code NotRunning.</exception>
        public string[] Addresses
        {
            get
            {
                var h = Live();
                int n = NativeMethods.Check(NativeMethods.boxmq_broker_address_count(h));
                var result = new string[n];
                for (int i = 0; i < n; i++)
                {
                    var index = (UIntPtr)i;
                    int len = NativeMethods.Check(
                        NativeMethods.boxmq_broker_address(h, index, null, UIntPtr.Zero));
                    var buf = new byte[len + 1];
                    NativeMethods.Check(
                        NativeMethods.boxmq_broker_address(h, index, buf, (UIntPtr)buf.Length));
                    result[i] = Utf8.FromBuffer(buf);
                }
                return result;
            }
        }

        /// <summary>The broker's counters now (one round trip to the broker thread).</summary>
        /// <exception cref="BoxMqException">Code NotRunning, Timeout.</exception>
        public BrokerStats Stats
        {
            get
            {
                NativeMethods.Stats s;
                NativeMethods.Check(NativeMethods.boxmq_broker_stats(Live(), out s));
                return new BrokerStats(s);
            }
        }

        /// <summary>
        /// Connects an in-process client (no socket) with this client id;
        /// null or "": one is assigned. It needs no credentials and no ACL
        /// applies. A network client connecting with the same id takes the
        /// session over; this client's calls then fail with Disconnected.
        /// </summary>
        /// <exception cref="BoxMqException">Code NotRunning, Refused (id too long, max_sessions), Timeout.</exception>
        public Client CreateClient(string clientId)
        {
            ClientHandle h;
            int rc = NativeMethods.boxmq_client_new(Live(), Utf8.Encode(clientId, "clientId"), out h);
            if (rc < 0)
            {
                var e = NativeMethods.Error(rc);
                h.Dispose();
                throw e;
            }
            return new Client(h, clientId ?? string.Empty);
        }

        /// <summary>
        /// Decides who may connect: called for every CONNECT from the
        /// network (after the password file; in-process clients and bridges
        /// are not asked), true accepts, false refuses (CONNACK 0x05 in
        /// 3.1.1, 0x87 in 5.0). Null (the default) asks nobody. Set it
        /// before Start; a restart keeps it.
        /// </summary>
        /// <remarks>
        /// Runs on the broker's "boxmq-hook" threads, SEVERAL AT ONCE
        /// (calls for one client one after the other): it must be
        /// thread-safe. It may block (a database look-up): only that
        /// client waits, up to <see cref="HookTimeout"/>, after which the
        /// CONNECT is refused. An exception refuses and goes to the trace
        /// listeners. It must not call Stop or Dispose of this broker.
        /// </remarks>
        /// <exception cref="BoxMqException">Code AlreadyRunning (set while running).</exception>
        public Func<ConnectRequest, bool> OnConnect
        {
            get { lock (hookLock) { return hooks == null ? null : hooks.OnConnect; } }
            set
            {
                lock (hookLock)
                {
                    var target = Hooks();
                    NativeMethods.Check(NativeMethods.boxmq_broker_on_connect(
                        Live(), value == null ? null : HookRegistry.ConnectTrampoline, (IntPtr)handle.HooksKey));
                    target.OnConnect = value;
                }
            }
        }

        /// <summary>
        /// Decides what is routed: called for every PUBLISH from the network
        /// (after the ACL); false drops it (QoS 1/2 is acknowledged all the
        /// same, 5.0 with reason 0x87). The rest as <see cref="OnConnect"/>.
        /// </summary>
        /// <exception cref="BoxMqException">Code AlreadyRunning (set while running).</exception>
        public Func<PublishRequest, bool> OnPublish
        {
            get { lock (hookLock) { return hooks == null ? null : hooks.OnPublish; } }
            set
            {
                lock (hookLock)
                {
                    var target = Hooks();
                    NativeMethods.Check(NativeMethods.boxmq_broker_on_publish(
                        Live(), value == null ? null : HookRegistry.PublishTrampoline, (IntPtr)handle.HooksKey));
                    target.OnPublish = value;
                }
            }
        }

        /// <summary>
        /// Decides what may be subscribed: called once per filter of a
        /// SUBSCRIBE from the network; false gives that filter 0x80 (3.1.1)
        /// / 0x87 (5.0) in the SUBACK. The rest as <see cref="OnConnect"/>.
        /// </summary>
        /// <exception cref="BoxMqException">Code AlreadyRunning (set while running).</exception>
        public Func<SubscribeRequest, bool> OnSubscribe
        {
            get { lock (hookLock) { return hooks == null ? null : hooks.OnSubscribe; } }
            set
            {
                lock (hookLock)
                {
                    var target = Hooks();
                    NativeMethods.Check(NativeMethods.boxmq_broker_on_subscribe(
                        Live(), value == null ? null : HookRegistry.SubscribeTrampoline, (IntPtr)handle.HooksKey));
                    target.OnSubscribe = value;
                }
            }
        }

        /// <summary>
        /// How long a hook may take before its client's packet is refused
        /// (default 5 s, whole milliseconds, at least 1 ms). Set it before Start.
        /// </summary>
        /// <exception cref="BoxMqException">Code AlreadyRunning (set while running).</exception>
        public TimeSpan HookTimeout
        {
            get { lock (hookLock) { return hookTimeout; } }
            set
            {
                double ms = Math.Ceiling(value.TotalMilliseconds);
                if (ms < 1 || ms > uint.MaxValue)
                {
                    throw new ArgumentOutOfRangeException("value", "between 1 ms and 49 days");
                }
                lock (hookLock)
                {
                    NativeMethods.Check(NativeMethods.boxmq_broker_hook_timeout(Live(), (uint)ms));
                    hookTimeout = TimeSpan.FromMilliseconds(ms);
                }
            }
        }

        /// <summary>
        /// What happens to network clients (connected, disconnected,
        /// subscribed, unsubscribed, dropping), taken with
        /// <see cref="BrokerEvents.TryReceive"/> while the broker runs.
        /// In-process clients and bridges are not reported.
        /// </summary>
        public BrokerEvents Events { get; private set; }

        /// <summary>Events lost so far because nobody took them (the queue holds 1024).</summary>
        /// <exception cref="BoxMqException">Code NotRunning.</exception>
        public long EventsLost
        {
            get
            {
                long n = NativeMethods.boxmq_broker_events_lost(Live());
                if (n < 0)
                {
                    throw NativeMethods.Error((int)n);
                }
                return n;
            }
        }

        internal bool NextEvent(TimeSpan timeout, out BrokerEvent e)
        {
            e = null;
            int ms;
            if (timeout == Timeout.InfiniteTimeSpan)
            {
                ms = -1;
            }
            else if (timeout < TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException("timeout", "negative, and not Timeout.InfiniteTimeSpan");
            }
            else
            {
                ms = (int)Math.Min(Math.Ceiling(timeout.TotalMilliseconds), int.MaxValue);
            }
            var ev = new NativeMethods.Event();
            int rc = NativeMethods.Check(NativeMethods.boxmq_broker_next_event(Live(), ms, out ev));
            if (rc != NativeMethods.BOXMQ_OK)
            {
                return false;
            }
            try
            {
                e = new BrokerEvent(
                    (BrokerEventKind)ev.Kind,
                    Utf8.FromNul(ev.ClientId),
                    ev.Topic == IntPtr.Zero ? null : Utf8.FromNul(ev.Topic),
                    ev.Reason == IntPtr.Zero ? null : Utf8.FromNul(ev.Reason));
            }
            finally
            {
                NativeMethods.boxmq_event_free(ref ev);
            }
            return true;
        }

        /// <summary>This broker's entry in the hook registry, made on first use (under hookLock).</summary>
        private HookTarget Hooks()
        {
            if (hooks == null)
            {
                var target = new HookTarget();
                handle.HooksKey = HookRegistry.Targets.Add(target);
                hooks = target;
            }
            return hooks;
        }

        /// <summary>
        /// Stops the broker as Stop does and frees it. Clients and
        /// subscriptions may outlive it (they then report NotRunning or end).
        /// A broker that is never disposed is stopped and freed by its
        /// finalizer; dispose it to free its port at a known time.
        /// </summary>
        public void Dispose()
        {
            handle.Dispose();
        }

        private BrokerHandle Live()
        {
            if (handle.IsClosed)
            {
                throw new ObjectDisposedException("Broker");
            }
            return handle;
        }
    }

    /// <summary>The broker's counters at one moment.</summary>
    public sealed class BrokerStats
    {
        internal BrokerStats(NativeMethods.Stats s)
        {
            ClientsConnected = (long)s.ClientsConnected;
            ClientsMaximum = (long)s.ClientsMaximum;
            Sessions = (long)s.Sessions;
            MessagesReceived = (long)s.MessagesReceived;
            MessagesSent = (long)s.MessagesSent;
            BytesReceived = (long)s.BytesReceived;
            BytesSent = (long)s.BytesSent;
            PublishDropped = (long)s.PublishDropped;
            RetainedRefused = (long)s.RetainedRefused;
            RetainedMessages = (long)s.RetainedMessages;
            RetainedBytes = (long)s.RetainedBytes;
            Subscriptions = (long)s.Subscriptions;
        }

        /// <summary>Clients connected now (in-process clients and each subscription count).</summary>
        public long ClientsConnected { get; private set; }
        /// <summary>Most clients connected at once since start.</summary>
        public long ClientsMaximum { get; private set; }
        /// <summary>Sessions held, connected and offline.</summary>
        public long Sessions { get; private set; }
        /// <summary>PUBLISH packets received (network and in-process).</summary>
        public long MessagesReceived { get; private set; }
        /// <summary>PUBLISH packets sent to clients.</summary>
        public long MessagesSent { get; private set; }
        /// <summary>Bytes received from all connections.</summary>
        public long BytesReceived { get; private set; }
        /// <summary>Bytes handed to all connections.</summary>
        public long BytesSent { get; private set; }
        /// <summary>Messages dropped at a limit (a slow subscriber's QoS 0, a stuck one's QoS 1/2).</summary>
        public long PublishDropped { get; private set; }
        /// <summary>Retained messages not stored because of the retained limits.</summary>
        public long RetainedRefused { get; private set; }
        /// <summary>Retained messages held.</summary>
        public long RetainedMessages { get; private set; }
        /// <summary>Topic and payload bytes of the retained messages held.</summary>
        public long RetainedBytes { get; private set; }
        /// <summary>Subscriptions held over all sessions.</summary>
        public long Subscriptions { get; private set; }
    }
}
