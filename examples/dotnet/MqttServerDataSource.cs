// The data source of a display application whose MQTT server is inside
// it: a port, a state the screen shows (Init, Running), a start command
// and the messages of one topic filter as an event. A display binds
// State and MessageReceived; the Shelly buttons on the network connect to
// Port. Built and run by tests/dotnet.rs with ButtonDashboard.cs.

using System;
using System.Threading;
using BoxMq;

namespace BoxMq.Examples
{
    /// <summary>A message of the data source's topic filter.</summary>
    public sealed class MessageReceivedEventArgs : EventArgs
    {
        internal MessageReceivedEventArgs(Message message)
        {
            Message = message;
        }

        /// <summary>The message, as the subscription received it.</summary>
        public Message Message { get; private set; }

        /// <summary>Its topic.</summary>
        public string Topic
        {
            get { return Message.Topic; }
        }

        /// <summary>Its payload as UTF-8 text (a Shelly button sends JSON).</summary>
        public string Payload
        {
            get { return Message.PayloadText; }
        }
    }

    /// <summary>
    /// An MQTT server as a data source: set Port (1883 unless told), call
    /// Start once (from a timer or the application's start-up), show
    /// State, and handle MessageReceived. Events come on the thread that
    /// called Start when it has a SynchronizationContext (a WPF or
    /// WinForms UI thread), else on the subscription's "boxmq-callback"
    /// thread.
    /// </summary>
    public sealed class MqttServerDataSource : IDisposable
    {
        private readonly object gate = new object();
        private Broker broker;
        private Client client;
        private Subscription subscription;
        private SynchronizationContext context;

        /// <summary>A data source on port 1883 of every interface, for the Shelly buttons' topic.</summary>
        public MqttServerDataSource()
        {
            Port = 1883;
            Address = "0.0.0.0";
            Topic = "shellies/+/input_event/0";
        }

        /// <summary>The TCP port (0: a free one, read back after Start).</summary>
        public int Port { get; set; }

        /// <summary>The address to listen on: "0.0.0.0" for the network, "127.0.0.1" for this box only.</summary>
        public string Address { get; set; }

        /// <summary>The topic filter whose messages MessageReceived reports.</summary>
        public string Topic { get; set; }

        /// <summary>Init before Start, Running after it, Failed when the port could not be had, Stopped after Stop.</summary>
        public BrokerState State
        {
            get
            {
                lock (gate)
                {
                    return broker == null ? BrokerState.Init : broker.State;
                }
            }
        }

        /// <summary>Why the state is Failed ("" otherwise).</summary>
        public string FailureReason
        {
            get
            {
                lock (gate)
                {
                    return broker == null ? string.Empty : broker.FailureReason;
                }
            }
        }

        /// <summary>A message arrived on Topic.</summary>
        public event EventHandler<MessageReceivedEventArgs> MessageReceived;

        /// <summary>State changed (after Start and Stop).</summary>
        public event EventHandler StateChanged;

        /// <summary>
        /// Starts the server and subscribes to Topic. Throws
        /// BoxMqException when the port cannot be had; State is then
        /// Failed and Start may be called again.
        /// </summary>
        public void Start()
        {
            lock (gate)
            {
                if (broker == null)
                {
                    broker = new Broker("listener " + Port + " " + Address);
                }
                context = SynchronizationContext.Current;
                try
                {
                    broker.Start();
                }
                finally
                {
                    RaiseStateChanged();
                }
                Port = broker.Port;
                client = broker.CreateClient("dashboard");
                subscription = client.Subscribe(Topic, 1, OnMessage);
            }
        }

        /// <summary>Stops the server; Start starts it again on the same port.</summary>
        public void Stop()
        {
            lock (gate)
            {
                if (subscription != null)
                {
                    subscription.Dispose();
                    subscription = null;
                }
                if (client != null)
                {
                    client.Dispose();
                    client = null;
                }
                if (broker != null)
                {
                    broker.Stop();
                    RaiseStateChanged();
                }
            }
        }

        /// <summary>Stops the server and frees it.</summary>
        public void Dispose()
        {
            Stop();
            lock (gate)
            {
                if (broker != null)
                {
                    broker.Dispose();
                }
            }
        }

        // On the "boxmq-callback" thread. An exception of a handler is
        // caught by BoxMq (counted in the subscription's CallbackFailures).
        private void OnMessage(Message m)
        {
            var handler = MessageReceived;
            if (handler != null)
            {
                Post(() => handler(this, new MessageReceivedEventArgs(m)));
            }
        }

        private void RaiseStateChanged()
        {
            var handler = StateChanged;
            if (handler != null)
            {
                Post(() => handler(this, EventArgs.Empty));
            }
        }

        /// <summary>Runs raise on the UI thread of Start if it had one, else here.</summary>
        private void Post(Action raise)
        {
            var ui = context;
            if (ui != null)
            {
                ui.Post(_ => raise(), null);
            }
            else
            {
                raise();
            }
        }
    }
}
