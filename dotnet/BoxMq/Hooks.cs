using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading;

namespace BoxMq
{
    /// <summary>What <see cref="Broker.OnConnect"/> sees of a network client's CONNECT.</summary>
    public sealed class ConnectRequest
    {
        internal ConnectRequest(string clientId, string username, byte[] password, string address, int protocol)
        {
            ClientId = clientId;
            Username = username;
            Password = password;
            Address = address;
            Protocol = protocol;
        }

        /// <summary>The client id as sent; "" when the broker will assign one.</summary>
        public string ClientId { get; private set; }

        /// <summary>The user name, or null when the CONNECT has none.</summary>
        public string Username { get; private set; }

        /// <summary>The password bytes (a copy), or null when the CONNECT has none.</summary>
        public byte[] Password { get; private set; }

        /// <summary>The peer's address, "IP:port".</summary>
        public string Address { get; private set; }

        /// <summary>The protocol level: 3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0).</summary>
        public int Protocol { get; private set; }
    }

    /// <summary>What <see cref="Broker.OnPublish"/> sees of a network client's PUBLISH.</summary>
    public sealed class PublishRequest
    {
        internal PublishRequest(string clientId, string topic, byte[] payload, int qos, bool retain)
        {
            ClientId = clientId;
            Topic = topic;
            Payload = payload;
            Qos = qos;
            Retain = retain;
        }

        /// <summary>The publisher's client id.</summary>
        public string ClientId { get; private set; }

        /// <summary>The topic.</summary>
        public string Topic { get; private set; }

        /// <summary>The payload (a copy).</summary>
        public byte[] Payload { get; private set; }

        /// <summary>0, 1 or 2.</summary>
        public int Qos { get; private set; }

        /// <summary>The retain flag.</summary>
        public bool Retain { get; private set; }
    }

    /// <summary>What <see cref="Broker.OnSubscribe"/> sees of one filter of a network client's SUBSCRIBE.</summary>
    public sealed class SubscribeRequest
    {
        internal SubscribeRequest(string clientId, string filter, int qos)
        {
            ClientId = clientId;
            Filter = filter;
            Qos = qos;
        }

        /// <summary>The subscriber's client id.</summary>
        public string ClientId { get; private set; }

        /// <summary>The filter.</summary>
        public string Filter { get; private set; }

        /// <summary>The QoS asked for.</summary>
        public int Qos { get; private set; }
    }

    /// <summary>What happened to a network client.</summary>
    public enum BrokerEventKind
    {
        /// <summary>The client connected.</summary>
        Connected = 1,
        /// <summary>Its connection ended; Reason says why.</summary>
        Disconnected = 2,
        /// <summary>A filter (Topic) was granted.</summary>
        Subscribed = 3,
        /// <summary>A filter (Topic) was removed.</summary>
        Unsubscribed = 4,
        /// <summary>Its queue bound was reached (Reason "queue full"): messages for it are dropped.</summary>
        Dropped = 5,
    }

    /// <summary>An event of <see cref="Broker.Events"/>.</summary>
    public sealed class BrokerEvent
    {
        internal BrokerEvent(BrokerEventKind kind, string clientId, string topic, string reason)
        {
            Kind = kind;
            ClientId = clientId;
            Topic = topic;
            Reason = reason;
        }

        /// <summary>What happened.</summary>
        public BrokerEventKind Kind { get; private set; }

        /// <summary>The client's id.</summary>
        public string ClientId { get; private set; }

        /// <summary>The filter for Subscribed and Unsubscribed, else null.</summary>
        public string Topic { get; private set; }

        /// <summary>
        /// Disconnected: "clean", "keepalive", "taken over", "protocol
        /// error", "connection lost", "shutdown"; Dropped: "queue full";
        /// else null.
        /// </summary>
        public string Reason { get; private set; }

        /// <summary>"Subscribed button-door shellies/#", for logs.</summary>
        public override string ToString()
        {
            return Kind + " " + ClientId + (Topic != null ? " " + Topic : "") + (Reason != null ? " (" + Reason + ")" : "");
        }
    }

    /// <summary>The events of a running broker, taken by polling.</summary>
    public sealed class BrokerEvents
    {
        private readonly Broker broker;

        internal BrokerEvents(Broker broker)
        {
            this.broker = broker;
        }

        /// <summary>
        /// Waits at most timeout (Timeout.InfiniteTimeSpan: until an event or
        /// the broker stops) for the next event. Events come in the order
        /// they happened, through a bounded queue of 1024: those that do not
        /// fit while nobody takes them are lost and counted
        /// (<see cref="Broker.EventsLost"/>); messages are never held back
        /// for them. Any thread; each event goes to one caller.
        /// </summary>
        /// <returns>True with an event, false when none came within the timeout.</returns>
        /// <exception cref="BoxMqException">Code NotRunning.</exception>
        public bool TryReceive(TimeSpan timeout, out BrokerEvent e)
        {
            return broker.NextEvent(timeout, out e);
        }
    }

    /// <summary>
    /// A broker's hooks, reached by the static trampolines through the key
    /// the native side hands back as user_data. The trampolines are static
    /// fields, so the delegates handed to native code live as long as the
    /// process; an entry lives until the broker's handle is released.
    /// </summary>
    internal sealed class HookTarget
    {
        internal volatile Func<ConnectRequest, bool> OnConnect;
        internal volatile Func<PublishRequest, bool> OnPublish;
        internal volatile Func<SubscribeRequest, bool> OnSubscribe;
    }

    /// <summary>The hook registry and the trampolines native code calls.</summary>
    internal static class HookRegistry
    {
        internal static readonly NativeMethods.ConnectCallback ConnectTrampoline = Connect;
        internal static readonly NativeMethods.PublishCallback PublishTrampoline = Publish;
        internal static readonly NativeMethods.SubscribeCallback SubscribeTrampoline = Subscribe;

        /// <summary>The brokers with hooks, by the key their trampolines get.</summary>
        internal static readonly Registry<HookTarget> Targets = new Registry<HookTarget>();

        /// <summary>How many brokers with hooks are live (for tests).</summary>
        internal static int Count
        {
            get { return Targets.Count; }
        }

        private static string Text(IntPtr p)
        {
            return p == IntPtr.Zero ? null : Utf8.FromNul(p);
        }

        // The trampolines run on the broker's "boxmq-hook" threads, several at
        // once. Nothing may escape: an exception unwinding into native code
        // ends the process. A hook that throws (or is gone) refuses.

        private static int Connect(IntPtr userData, IntPtr request)
        {
            try
            {
                var target = Targets.Find(userData);
                var hook = target == null ? null : target.OnConnect;
                if (hook == null)
                {
                    return NativeMethods.BOXMQ_REFUSE;
                }
                var r = (NativeMethods.ConnectRequest)Marshal.PtrToStructure(request, typeof(NativeMethods.ConnectRequest));
                var req = new ConnectRequest(
                    Utf8.FromNul(r.ClientId),
                    Text(r.Username),
                    r.Password == IntPtr.Zero ? null : Utf8.Bytes(r.Password, checked((int)r.PasswordLen.ToUInt64())),
                    Utf8.FromNul(r.Address),
                    r.Protocol);
                return hook(req) ? NativeMethods.BOXMQ_ACCEPT : NativeMethods.BOXMQ_REFUSE;
            }
            catch (Exception e)
            {
                Failed("OnConnect", e);
                return NativeMethods.BOXMQ_REFUSE;
            }
        }

        private static int Publish(IntPtr userData, IntPtr request)
        {
            try
            {
                var target = Targets.Find(userData);
                var hook = target == null ? null : target.OnPublish;
                if (hook == null)
                {
                    return NativeMethods.BOXMQ_REFUSE;
                }
                var r = (NativeMethods.PublishRequest)Marshal.PtrToStructure(request, typeof(NativeMethods.PublishRequest));
                var req = new PublishRequest(
                    Utf8.FromNul(r.ClientId),
                    Utf8.FromNul(r.Topic),
                    Utf8.Bytes(r.Payload, checked((int)r.PayloadLen.ToUInt64())),
                    r.Qos,
                    r.Retain != 0);
                return hook(req) ? NativeMethods.BOXMQ_ACCEPT : NativeMethods.BOXMQ_REFUSE;
            }
            catch (Exception e)
            {
                Failed("OnPublish", e);
                return NativeMethods.BOXMQ_REFUSE;
            }
        }

        private static int Subscribe(IntPtr userData, IntPtr request)
        {
            try
            {
                var target = Targets.Find(userData);
                var hook = target == null ? null : target.OnSubscribe;
                if (hook == null)
                {
                    return NativeMethods.BOXMQ_REFUSE;
                }
                var r = (NativeMethods.SubscribeRequest)Marshal.PtrToStructure(request, typeof(NativeMethods.SubscribeRequest));
                var req = new SubscribeRequest(Utf8.FromNul(r.ClientId), Utf8.FromNul(r.Filter), r.Qos);
                return hook(req) ? NativeMethods.BOXMQ_ACCEPT : NativeMethods.BOXMQ_REFUSE;
            }
            catch (Exception e)
            {
                Failed("OnSubscribe", e);
                return NativeMethods.BOXMQ_REFUSE;
            }
        }

        /// <summary>Reports an exception of a hook to the trace listeners; never throws.</summary>
        private static void Failed(string hook, Exception e)
        {
            try
            {
                // Trace.TraceError is [Conditional("TRACE")]: the listeners directly.
                string text = string.Format("the {0} hook threw (refused): {1}", hook, e);
                foreach (TraceListener listener in Trace.Listeners)
                {
                    listener.TraceEvent(new TraceEventCache(), "BoxMq", TraceEventType.Error, 0, text);
                }
            }
            catch (Exception)
            {
                // A failing listener must not unwind into native code.
            }
        }
    }
}
