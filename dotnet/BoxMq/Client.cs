using System;

namespace BoxMq
{
    /// <summary>
    /// An in-process client of a <see cref="Broker"/>: an MQTT connection
    /// whose bytes never leave memory, with the semantics of a network
    /// client (retained messages, wildcards, QoS). Each subscription is a
    /// connection of its own and lives on after its client is disposed.
    /// Every member may be called from any thread, also at the same time.
    /// </summary>
    public sealed class Client : IDisposable
    {
        private readonly ClientHandle handle;

        internal Client(ClientHandle handle, string clientId)
        {
            this.handle = handle;
            ClientId = clientId;
        }

        /// <summary>The client id asked for ("" when the broker assigned one).</summary>
        public string ClientId { get; private set; }

        /// <summary>
        /// Publishes payload (null: empty) on topic with QoS 0, 1 or 2.
        /// Returns once the broker has routed the message to every matching
        /// subscriber, network or in-process, and stored it with retain:
        /// what a QoS 1/2 acknowledgement means. An empty retained payload
        /// deletes the retained message.
        /// </summary>
        /// <exception cref="BoxMqException">
        /// Code InvalidTopic (wildcard, empty, too long), TooLarge,
        /// InvalidArgument (qos), Disconnected, NotRunning, Busy, Timeout.
        /// </exception>
        public void Publish(string topic, byte[] payload, int qos, bool retain)
        {
            if (topic == null)
            {
                throw new ArgumentNullException("topic");
            }
            byte[] t = Utf8.Encode(topic, "topic");
            int len = payload == null ? 0 : payload.Length;
            NativeMethods.Check(NativeMethods.boxmq_client_publish(
                Live(), t, payload, (UIntPtr)len, qos, retain));
        }

        /// <summary>
        /// Subscribes to filter ('+' and '#' as in MQTT; a filter starting
        /// with a wildcard does not match '$' topics) with maximum QoS qos.
        /// Retained messages arrive first, then every matching publication;
        /// read them with <see cref="Subscription.TryReceive"/>.
        /// </summary>
        /// <exception cref="BoxMqException">Code InvalidTopic, InvalidArgument (qos), Refused, NotRunning, Timeout.</exception>
        public Subscription Subscribe(string filter, int qos)
        {
            if (filter == null)
            {
                throw new ArgumentNullException("filter");
            }
            SubscriptionHandle h;
            int rc = NativeMethods.boxmq_client_subscribe(
                Live(), Utf8.Encode(filter, "filter"), qos, out h);
            if (rc < 0)
            {
                var e = NativeMethods.Error(rc);
                h.Dispose();
                throw e;
            }
            return new Subscription(h, filter, null);
        }

        /// <summary>
        /// Subscribes as <see cref="Subscribe(string, int)"/> and calls
        /// onMessage for every message, on a native thread of the
        /// subscription's own (named "boxmq-callback"): never on the broker
        /// thread and never on the caller's. Calls come one at a time, in
        /// order; a slow callback only holds back this subscription. Marshal
        /// to the UI thread (SynchronizationContext, Dispatcher) before
        /// touching controls. An exception thrown by onMessage is caught:
        /// the message is counted in <see cref="Subscription.CallbackFailures"/>,
        /// the exception kept in <see cref="Subscription.LastCallbackException"/>
        /// and written with Trace.TraceError, and the next message is
        /// delivered as usual. Keep the returned Subscription referenced:
        /// once it is disposed or finalized, the callbacks stop.
        /// </summary>
        /// <exception cref="BoxMqException">As Subscribe(string, int), and Code Thread.</exception>
        public Subscription Subscribe(string filter, int qos, Action<Message> onMessage)
        {
            if (filter == null)
            {
                throw new ArgumentNullException("filter");
            }
            if (onMessage == null)
            {
                throw new ArgumentNullException("onMessage");
            }
            byte[] f = Utf8.Encode(filter, "filter");
            var target = new CallbackTarget(filter, onMessage);
            long key = Callbacks.Targets.Add(target);
            SubscriptionHandle h;
            int rc = NativeMethods.boxmq_client_subscribe_callback(
                Live(), f, qos, Callbacks.Trampoline, (IntPtr)key, out h);
            if (rc < 0)
            {
                var e = NativeMethods.Error(rc);
                Callbacks.Targets.Remove(key);
                h.Dispose();
                throw e;
            }
            // From here the handle removes the registry entry when released.
            h.CallbackKey = key;
            return new Subscription(h, filter, target);
        }

        /// <summary>Disconnects the client; its subscriptions live on. Harmless twice.</summary>
        public void Dispose()
        {
            handle.Dispose();
        }

        private ClientHandle Live()
        {
            if (handle.IsClosed)
            {
                throw new ObjectDisposedException("Client");
            }
            return handle;
        }
    }

    /// <summary>A message as a subscription receives it.</summary>
    public sealed class Message
    {
        /// <summary>The topic it was published on.</summary>
        public string Topic;

        /// <summary>The payload, a copy owned by this object (never null).</summary>
        public byte[] Payload;

        /// <summary>The QoS it was delivered with: the lower of the published and the subscribed QoS.</summary>
        public int Qos;

        /// <summary>A retained message sent because of the subscription (not a live publication).</summary>
        public bool Retain;

        /// <summary>The payload read as UTF-8 text.</summary>
        public string PayloadText
        {
            get { return Payload == null ? string.Empty : System.Text.Encoding.UTF8.GetString(Payload); }
        }

        /// <summary>"topic (qos, retain): payload" for logs.</summary>
        public override string ToString()
        {
            return string.Format("{0} (qos {1}{2}): {3}", Topic, Qos, Retain ? ", retained" : "", PayloadText);
        }

        /// <summary>A managed copy of a native message.</summary>
        internal static Message Copy(ref NativeMethods.Message m)
        {
            return new Message
            {
                Topic = Utf8.Decode(m.Topic, checked((int)m.TopicLen.ToUInt64())),
                Payload = Utf8.Bytes(m.Payload, checked((int)m.PayloadLen.ToUInt64())),
                Qos = m.Qos,
                Retain = m.Retain != 0,
            };
        }
    }
}
