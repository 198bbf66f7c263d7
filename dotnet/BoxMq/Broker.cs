using System;

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
