using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading;

namespace BoxMq
{
    /// <summary>
    /// A subscription of an in-process client: polled with
    /// <see cref="TryReceive"/>, or delivering to a callback. It is a
    /// connection of its own with a bounded queue; when nobody takes its
    /// messages the broker holds further ones back under its limits (QoS 0
    /// ones may be dropped, counted in BrokerStats.PublishDropped), without
    /// slowing anyone else. Dispose unsubscribes; a subscription that is
    /// never disposed is unsubscribed by its finalizer.
    /// </summary>
    public sealed class Subscription : IDisposable
    {
        private readonly SubscriptionHandle handle;
        private readonly CallbackTarget target;
        private volatile bool ended;

        internal Subscription(SubscriptionHandle handle, string filter, CallbackTarget target)
        {
            this.handle = handle;
            this.target = target;
            Filter = filter;
        }

        /// <summary>The filter subscribed to.</summary>
        public string Filter { get; private set; }

        /// <summary>
        /// True once the subscription has ended (the broker stopped) and
        /// every message has been taken, or after Dispose.
        /// </summary>
        public bool IsClosed
        {
            get { return ended || handle.IsClosed; }
        }

        /// <summary>Messages whose callback threw (0 for a polled subscription).</summary>
        public long CallbackFailures
        {
            get { return target == null ? 0 : Interlocked.Read(ref target.Failures); }
        }

        /// <summary>The last exception a callback threw, or null.</summary>
        public Exception LastCallbackException
        {
            get { return target == null ? null : target.LastException; }
        }

        /// <summary>
        /// Waits at most timeout (TimeSpan.Zero: do not wait;
        /// Timeout.InfiniteTimeSpan: for ever) for the next message. True
        /// with the message; false when none came in time, or when the
        /// subscription has ended and is empty (then IsClosed is true).
        /// Several threads may wait at once; each message goes to one.
        /// </summary>
        /// <exception cref="InvalidOperationException">A callback subscription.</exception>
        /// <exception cref="ObjectDisposedException">After Dispose.</exception>
        public bool TryReceive(TimeSpan timeout, out Message message)
        {
            message = null;
            if (target != null)
            {
                throw new InvalidOperationException(
                    "a subscription with a callback has no messages to receive");
            }
            if (handle.IsClosed)
            {
                throw new ObjectDisposedException("Subscription");
            }
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
            NativeMethods.Message m;
            int rc = NativeMethods.Check(NativeMethods.boxmq_subscription_next(handle, ms, out m));
            if (rc == NativeMethods.BOXMQ_TIMEOUT)
            {
                return false;
            }
            if (rc == NativeMethods.BOXMQ_CLOSED)
            {
                ended = true;
                return false;
            }
            try
            {
                message = Message.Copy(ref m);
            }
            finally
            {
                NativeMethods.boxmq_message_free(ref m);
            }
            return true;
        }

        /// <summary>
        /// Unsubscribes; queued messages are dropped. For a callback
        /// subscription, waits for a running callback to return (unless
        /// called from that callback). Harmless twice.
        /// </summary>
        public void Dispose()
        {
            handle.Dispose();
        }
    }

    /// <summary>What a callback subscription calls, and what went wrong there.</summary>
    internal sealed class CallbackTarget
    {
        internal readonly string Filter;
        internal readonly Action<Message> Handler;
        internal long Failures;
        internal volatile Exception LastException;

        internal CallbackTarget(string filter, Action<Message> handler)
        {
            Filter = filter;
            Handler = handler;
        }

        /// <summary>Counts and reports an exception of the handler; never throws.</summary>
        internal void Failed(Exception e)
        {
            Interlocked.Increment(ref Failures);
            LastException = e;
            try
            {
                // Trace.TraceError is [Conditional("TRACE")], which a build
                // without -define:TRACE drops: the listeners directly.
                string text = string.Format("the callback of subscription {0} threw: {1}", Filter, e);
                foreach (TraceListener listener in Trace.Listeners)
                {
                    listener.TraceEvent(new TraceEventCache(), "BoxMq", TraceEventType.Error, 0, text);
                }
            }
            catch (Exception)
            {
                // A trace listener that throws must not unwind into native code either.
            }
        }
    }

    /// <summary>
    /// The one delegate native code calls, and the subscriptions it serves.
    /// The delegate lives in a static field, so its native thunk is valid
    /// for the life of the process; user_data is a key into the registry,
    /// not a GCHandle, so a late or stray call finds nothing instead of a
    /// freed handle. An entry is removed when its SubscriptionHandle is
    /// released, after boxmq_subscription_free has returned.
    /// </summary>
    internal static class Callbacks
    {
        internal static readonly NativeMethods.MessageCallback Trampoline = Deliver;

        /// <summary>The callback subscriptions, by the key the trampoline gets.</summary>
        internal static readonly Registry<CallbackTarget> Targets = new Registry<CallbackTarget>();

        /// <summary>How many callback subscriptions are live (for tests).</summary>
        internal static int Count
        {
            get { return Targets.Count; }
        }

        // Runs on the subscription's "boxmq-callback" thread. Nothing may
        // escape: an exception unwinding into native code ends the process.
        private static void Deliver(IntPtr userData, IntPtr message)
        {
            CallbackTarget target = null;
            try
            {
                target = Targets.Find(userData);
                if (target == null)
                {
                    return;
                }
                var m = (NativeMethods.Message)Marshal.PtrToStructure(message, typeof(NativeMethods.Message));
                target.Handler(Message.Copy(ref m));
            }
            catch (Exception e)
            {
                if (target != null)
                {
                    target.Failed(e);
                }
            }
        }
    }
}
