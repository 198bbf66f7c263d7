// The C ABI of boxmq (ffi/include/boxmq.h), declared for P/Invoke.
//
// One declaration per C function, in the header's order. Strings go in as
// NUL-terminated UTF-8 byte arrays made by Utf8.Encode (the marshaller's
// LPUTF8Str needs .NET Core 3.0; this library also runs on .NET Framework
// 4.8 and Mono). Objects are SafeHandles, so a call in flight keeps its
// object alive and a *_free never runs concurrently with another call on
// the same object, which is the one rule the header asks of its callers.

using System;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace BoxMq
{
    /// <summary>P/Invoke declarations of libboxmq (boxmq.dll on Windows).</summary>
    internal static class NativeMethods
    {
        /// <summary>
        /// The library name: libboxmq.so on Linux, boxmq.dll on Windows,
        /// libboxmq.dylib on macOS, as each runtime resolves it.
        /// </summary>
        internal const string Lib = "boxmq";

        internal const int BOXMQ_OK = 0;
        internal const int BOXMQ_TIMEOUT = 1;
        internal const int BOXMQ_CLOSED = 2;

        internal const int BOXMQ_STATE_INIT = 0;
        internal const int BOXMQ_STATE_RUNNING = 1;
        internal const int BOXMQ_STATE_STOPPED = 2;
        internal const int BOXMQ_STATE_FAILED = 3;

        /// <summary>boxmq_stats: twelve uint64_t counters.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct Stats
        {
            public ulong ClientsConnected;
            public ulong ClientsMaximum;
            public ulong Sessions;
            public ulong MessagesReceived;
            public ulong MessagesSent;
            public ulong BytesReceived;
            public ulong BytesSent;
            public ulong PublishDropped;
            public ulong RetainedRefused;
            public ulong RetainedMessages;
            public ulong RetainedBytes;
            public ulong Subscriptions;
        }

        /// <summary>boxmq_message. C bool is one byte, hence Retain as a byte.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct Message
        {
            public IntPtr Topic;
            public UIntPtr TopicLen;
            public IntPtr Payload;
            public UIntPtr PayloadLen;
            public int Qos;
            public byte Retain;
        }

        internal const int BOXMQ_ACCEPT = 0;
        internal const int BOXMQ_REFUSE = 1;
        internal const int BOXMQ_BAD_CREDENTIALS = 2;

        /// <summary>boxmq_connect_request.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct ConnectRequest
        {
            public IntPtr ClientId;
            public IntPtr Username;
            public IntPtr Password;
            public UIntPtr PasswordLen;
            public IntPtr Address;
            public int Protocol;
        }

        /// <summary>boxmq_publish_request. C bool is one byte, hence Retain as a byte.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct PublishRequest
        {
            public IntPtr ClientId;
            public IntPtr Topic;
            public IntPtr Payload;
            public UIntPtr PayloadLen;
            public int Qos;
            public byte Retain;
        }

        /// <summary>boxmq_subscribe_request.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct SubscribeRequest
        {
            public IntPtr ClientId;
            public IntPtr Filter;
            public int Qos;
        }

        /// <summary>boxmq_event: strings owned by the caller until boxmq_event_free.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct Event
        {
            public int Kind;
            public IntPtr ClientId;
            public IntPtr Topic;
            public IntPtr Reason;
        }

        /// <summary>boxmq_connect_cb.</summary>
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int ConnectCallback(IntPtr userData, IntPtr request);

        /// <summary>boxmq_publish_cb.</summary>
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int PublishCallback(IntPtr userData, IntPtr request);

        /// <summary>boxmq_subscribe_cb.</summary>
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int SubscribeCallback(IntPtr userData, IntPtr request);

        /// <summary>boxmq_message_cb.</summary>
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void MessageCallback(IntPtr userData, IntPtr message);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr boxmq_last_error();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr boxmq_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_new(byte[] config, out BrokerHandle broker);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_start(BrokerHandle broker);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_stop(BrokerHandle broker);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_state(
            BrokerHandle broker, [Out] byte[] reason, UIntPtr reasonLen);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_address_count(BrokerHandle broker);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_address(
            BrokerHandle broker, UIntPtr index, [Out] byte[] buf, UIntPtr len);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_port(BrokerHandle broker, UIntPtr index);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_stats(BrokerHandle broker, out Stats stats);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void boxmq_broker_free(IntPtr broker);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_on_connect(
            BrokerHandle broker, ConnectCallback callback, IntPtr userData);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_on_publish(
            BrokerHandle broker, PublishCallback callback, IntPtr userData);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_on_subscribe(
            BrokerHandle broker, SubscribeCallback callback, IntPtr userData);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_hook_timeout(BrokerHandle broker, uint timeoutMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_broker_next_event(
            BrokerHandle broker, int timeoutMs, out Event ev);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long boxmq_broker_events_lost(BrokerHandle broker);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void boxmq_event_free(ref Event ev);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_client_new(
            BrokerHandle broker, byte[] clientId, out ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_client_publish(
            ClientHandle client, byte[] topic, byte[] payload, UIntPtr payloadLen, int qos,
            [MarshalAs(UnmanagedType.U1)] bool retain);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_client_subscribe(
            ClientHandle client, byte[] filter, int qos, out SubscriptionHandle sub);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_client_subscribe_callback(
            ClientHandle client, byte[] filter, int qos, MessageCallback callback,
            IntPtr userData, out SubscriptionHandle sub);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int boxmq_subscription_next(
            SubscriptionHandle sub, int timeoutMs, out Message message);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void boxmq_message_free(ref Message message);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void boxmq_subscription_free(IntPtr sub);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void boxmq_client_free(IntPtr client);

        /// <summary>
        /// Throws a BoxMqException for a negative code, with the message of
        /// boxmq_last_error, which is per native thread: call it right after
        /// the failing call, on the same thread. Returns the code otherwise.
        /// </summary>
        internal static int Check(int rc)
        {
            if (rc >= 0)
            {
                return rc;
            }
            throw Error(rc);
        }

        /// <summary>The exception for a negative code (see Check).</summary>
        internal static BoxMqException Error(int rc)
        {
            return new BoxMqException((BoxMqErrorCode)rc, Utf8.FromNul(boxmq_last_error()));
        }
    }

    /// <summary>UTF-8 in and out by hand: the same code on every runtime.</summary>
    internal static class Utf8
    {
        // Throws on lone surrogates instead of sending U+FFFD.
        private static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        /// <summary>The string as UTF-8 with a NUL after it; null stays null.</summary>
        internal static byte[] Encode(string s, string what)
        {
            if (s == null)
            {
                return null;
            }
            if (s.IndexOf('\0') >= 0)
            {
                throw new ArgumentException(what + " contains U+0000", what);
            }
            byte[] bytes;
            try
            {
                bytes = Strict.GetBytes(s);
            }
            catch (EncoderFallbackException e)
            {
                throw new ArgumentException(what + " is not valid UTF-16 text", what, e);
            }
            var z = new byte[bytes.Length + 1];
            Buffer.BlockCopy(bytes, 0, z, 0, bytes.Length);
            return z;
        }

        /// <summary>A NUL-terminated UTF-8 string owned by the library.</summary>
        internal static string FromNul(IntPtr p)
        {
            if (p == IntPtr.Zero)
            {
                return string.Empty;
            }
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0)
            {
                n++;
            }
            return Decode(p, n);
        }

        /// <summary>n bytes of UTF-8 at p (invalid sequences become U+FFFD).</summary>
        internal static string Decode(IntPtr p, int n)
        {
            return Encoding.UTF8.GetString(Bytes(p, n));
        }

        /// <summary>The first NUL-terminated string in buf.</summary>
        internal static string FromBuffer(byte[] buf)
        {
            int n = Array.IndexOf(buf, (byte)0);
            return Encoding.UTF8.GetString(buf, 0, n < 0 ? buf.Length : n);
        }

        /// <summary>A copy of n bytes at p.</summary>
        internal static byte[] Bytes(IntPtr p, int n)
        {
            var b = new byte[n];
            if (n > 0)
            {
                Marshal.Copy(p, b, 0, n);
            }
            return b;
        }
    }

    /// <summary>A boxmq_broker *; freeing it stops the broker.</summary>
    internal sealed class BrokerHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        /// <summary>
        /// The key of this broker's hooks in the hook registry, 0 when none
        /// was ever set; removed once boxmq_broker_free has returned (the
        /// native side then calls no hook any more).
        /// </summary>
        internal long HooksKey;

        /// <summary>For the marshaller (out parameters).</summary>
        public BrokerHandle() : base(true)
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.boxmq_broker_free(handle);
            if (HooksKey != 0)
            {
                HookRegistry.Targets.Remove(HooksKey);
            }
            return true;
        }
    }

    /// <summary>A boxmq_client *.</summary>
    internal sealed class ClientHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        /// <summary>For the marshaller (out parameters).</summary>
        public ClientHandle() : base(true)
        {
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.boxmq_client_free(handle);
            return true;
        }
    }

    /// <summary>
    /// A boxmq_subscription *. For a callback subscription it also owns the
    /// entry of the callback registry, removed once the native side can no
    /// longer call back (boxmq_subscription_free has returned).
    /// </summary>
    internal sealed class SubscriptionHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        /// <summary>The registry key of a callback subscription, 0 for a polled one.</summary>
        internal long CallbackKey;

        /// <summary>For the marshaller (out parameters).</summary>
        public SubscriptionHandle() : base(true)
        {
        }

        protected override bool ReleaseHandle()
        {
            // Waits for a running callback to return (unless called from it;
            // then the native side calls it no more once it returns).
            NativeMethods.boxmq_subscription_free(handle);
            if (CallbackKey != 0)
            {
                Callbacks.Targets.Remove(CallbackKey);
            }
            return true;
        }
    }
}
