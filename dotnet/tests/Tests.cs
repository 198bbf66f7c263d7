// The BoxMq library's tests, a console program run on Mono by
// tests/dotnet.rs (and by hand: see docs/DOTNET.md, "Tests").
//
//   mono BoxMqTests.exe [cycles]
//
// Needs libboxmq.so where DllImport("boxmq") finds it (LD_LIBRARY_PATH)
// and mosquitto_pub/mosquitto_sub on PATH. Prints "ok NAME" or
// "FAIL NAME: ..." per test, "measure: ..." lines for the cycle test, and
// "N passed, M failed" last; exits 1 when a test failed.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using BoxMq;

internal static class Tests
{
    private const string Press = "shellies/shellybutton1-A4CF12F45A10/input_event/0";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private static int cycles = 1000;

    private static int Main(string[] args)
    {
        if (args.Length > 0)
        {
            cycles = int.Parse(args[0]);
        }
        var tests = new List<KeyValuePair<string, Action>>
        {
            T("the native version is the assembly's", NativeVersion),
            T("the native structs have the header's sizes and offsets", Layouts),
            T("lifecycle: Init, Running, Stopped, restart on the same port", Lifecycle),
            T("a bad config line is a Config error naming the line", ConfigError),
            T("a port in use: Start throws Bind, State Failed, then starts once free", PortInUse),
            T("a Shelly press from mosquitto_pub reaches polled and callback subscriptions", ShellyPress),
            T("the application publishes to a network subscriber (mosquitto_sub)", AppToNetwork),
            T("in-process to in-process: retained first, QoS downgrade, binary and UTF-8", InProcess),
            T("invalid topics, filters and QoS are errors and the client goes on", InvalidArguments),
            T("callbacks run off the caller's thread, on boxmq-callback", CallbackThread),
            T("a callback that throws is counted; the subscription and broker go on", CallbackThrows),
            T("a callback may dispose its own subscription", CallbackDisposesItself),
            T("stopping ends subscriptions and fails clients", StopEndsEverything),
            T("disposal: twice is harmless, use after it is ObjectDisposedException", Disposal),
            T("OnConnect: a user table lets a known button in and refuses an unknown one", HookUserTable),
            T("OnPublish: non-JSON on shellies/# is not routed, JSON is", HookPublishJson),
            T("OnSubscribe: a refused filter gets 0x80 in the SUBACK; hooks are set before Start only", HookSubscribe),
            T("a hook that throws refuses and is traced; the broker goes on", HookThrows),
            T("events: connected, subscribed, disconnected for a mosquitto_sub client", EventsOfASubscriber),
            T("create/start/dispose cycles and finalized brokers leak nothing native", Cycles),
        };
        int passed = 0, failed = 0;
        foreach (var t in tests)
        {
            var watch = Stopwatch.StartNew();
            try
            {
                t.Value();
                passed++;
                Console.WriteLine("ok {0} ({1} ms)", t.Key, watch.ElapsedMilliseconds);
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine("FAIL {0}: {1}", t.Key, e);
            }
        }
        Console.WriteLine("{0} passed, {1} failed", passed, failed);
        return failed == 0 ? 0 : 1;
    }

    private static KeyValuePair<string, Action> T(string name, Action body)
    {
        return new KeyValuePair<string, Action>(name, body);
    }

    // ---- assertions ------------------------------------------------------

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new Exception("check failed: " + what);
        }
    }

    private static void Equal<TValue>(TValue expected, TValue actual, string what)
    {
        if (!EqualityComparer<TValue>.Default.Equals(expected, actual))
        {
            throw new Exception(string.Format("{0}: expected {1}, got {2}", what, expected, actual));
        }
    }

    private static TException Throws<TException>(Action body, string what) where TException : Exception
    {
        try
        {
            body();
        }
        catch (TException e)
        {
            return e;
        }
        throw new Exception(what + ": no " + typeof(TException).Name);
    }

    private static BoxMqException Fails(BoxMqErrorCode code, Action body, string what)
    {
        var e = Throws<BoxMqException>(body, what);
        Equal(code, e.Code, what + " (code; message: " + e.Message + ")");
        Check(e.Message.Length > 0, what + ": a message");
        return e;
    }

    private static Message Receive(Subscription sub, string what)
    {
        Message m;
        Check(sub.TryReceive(Wait, out m), what + ": a message within " + Wait);
        return m;
    }

    private static void Nothing(Subscription sub, string what)
    {
        Message m;
        Check(!sub.TryReceive(TimeSpan.FromMilliseconds(200), out m), what + ": nothing more, got " + m);
    }

    private static byte[] Utf8Bytes(string s)
    {
        return Encoding.UTF8.GetBytes(s);
    }

    /// <summary>A started broker on a free port of 127.0.0.1.</summary>
    private static Broker Started()
    {
        var b = new Broker("listener 0 127.0.0.1");
        b.Start();
        return b;
    }

    /// <summary>Runs a program to its end (at most Wait); its stdout.</summary>
    private static string Run(string program, string arguments)
    {
        var info = new ProcessStartInfo(program, arguments)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
        };
        using (var p = Process.Start(info))
        {
            string output = p.StandardOutput.ReadToEnd();
            Check(p.WaitForExit((int)Wait.TotalMilliseconds), program + " ended");
            Equal(0, p.ExitCode, program + " " + arguments + " exit code");
            return output;
        }
    }

    /// <summary>Waits until the broker holds at least n subscriptions.</summary>
    private static void WaitForSubscriptions(Broker b, long n)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (b.Stats.Subscriptions < n)
        {
            Check(DateTime.UtcNow < deadline, "the broker reaches " + n + " subscriptions");
            Thread.Sleep(20);
        }
    }

    // ---- tests -----------------------------------------------------------

    private static void NativeVersion()
    {
        var assembly = typeof(Broker).Assembly;
        var info = (System.Reflection.AssemblyInformationalVersionAttribute)Attribute.GetCustomAttribute(
            assembly, typeof(System.Reflection.AssemblyInformationalVersionAttribute));
        Equal(info.InformationalVersion, Broker.NativeVersion, "boxmq_version against AssemblyInformationalVersion");
    }

    private static void Layouts()
    {
        var assembly = typeof(Broker).Assembly;
        var message = assembly.GetType("BoxMq.NativeMethods+Message", true);
        var stats = assembly.GetType("BoxMq.NativeMethods+Stats", true);
        // The numbers ffi/src/lib.rs and ffi/tests/abi.c assert for boxmq.h.
        Equal(96, Marshal.SizeOf(stats), "sizeof(boxmq_stats)");
        Equal(24, (int)Marshal.OffsetOf(stats, "MessagesReceived"), "offsetof(boxmq_stats, messages_received)");
        Equal(88, (int)Marshal.OffsetOf(stats, "Subscriptions"), "offsetof(boxmq_stats, subscriptions)");
        if (IntPtr.Size == 8)
        {
            Equal(40, Marshal.SizeOf(message), "sizeof(boxmq_message)");
            Equal(16, (int)Marshal.OffsetOf(message, "Payload"), "offsetof(boxmq_message, payload)");
            Equal(32, (int)Marshal.OffsetOf(message, "Qos"), "offsetof(boxmq_message, qos)");
            Equal(36, (int)Marshal.OffsetOf(message, "Retain"), "offsetof(boxmq_message, retain)");
            var connect = assembly.GetType("BoxMq.NativeMethods+ConnectRequest", true);
            var publish = assembly.GetType("BoxMq.NativeMethods+PublishRequest", true);
            var subscribe = assembly.GetType("BoxMq.NativeMethods+SubscribeRequest", true);
            var ev = assembly.GetType("BoxMq.NativeMethods+Event", true);
            // x86_64 / aarch64 C layout of boxmq.h's hook structs.
            Equal(48, Marshal.SizeOf(connect), "sizeof(boxmq_connect_request)");
            Equal(24, (int)Marshal.OffsetOf(connect, "PasswordLen"), "offsetof(boxmq_connect_request, password_len)");
            Equal(40, (int)Marshal.OffsetOf(connect, "Protocol"), "offsetof(boxmq_connect_request, protocol)");
            Equal(40, Marshal.SizeOf(publish), "sizeof(boxmq_publish_request)");
            Equal(32, (int)Marshal.OffsetOf(publish, "Qos"), "offsetof(boxmq_publish_request, qos)");
            Equal(36, (int)Marshal.OffsetOf(publish, "Retain"), "offsetof(boxmq_publish_request, retain)");
            Equal(24, Marshal.SizeOf(subscribe), "sizeof(boxmq_subscribe_request)");
            Equal(16, (int)Marshal.OffsetOf(subscribe, "Qos"), "offsetof(boxmq_subscribe_request, qos)");
            Equal(32, Marshal.SizeOf(ev), "sizeof(boxmq_event)");
            Equal(8, (int)Marshal.OffsetOf(ev, "ClientId"), "offsetof(boxmq_event, client_id)");
            Equal(24, (int)Marshal.OffsetOf(ev, "Reason"), "offsetof(boxmq_event, reason)");
        }
    }

    private static void Lifecycle()
    {
        int port;
        using (var b = new Broker("listener 0 127.0.0.1"))
        {
            Equal(BrokerState.Init, b.State, "a new broker");
            Equal("", b.FailureReason, "no failure");
            Fails(BoxMqErrorCode.NotRunning, () => { var s = b.Stats; }, "stats before start");
            Fails(BoxMqErrorCode.NotRunning, () => b.CreateClient("early"), "a client before start");
            b.Stop(); // not running: harmless
            Equal(BrokerState.Init, b.State, "Stop before Start changes nothing");
            b.Start();
            Equal(BrokerState.Running, b.State, "started");
            port = b.Port;
            Check(port > 0, "a real port");
            Equal("127.0.0.1:" + port, b.Addresses.Single(), "the address");
            Fails(BoxMqErrorCode.AlreadyRunning, b.Start, "a second Start");
            Equal(BrokerState.Running, b.State, "still running");
            var stats = b.Stats;
            Equal(0L, stats.ClientsConnected, "no clients yet");
            b.Stop();
            Equal(BrokerState.Stopped, b.State, "stopped");
            b.Stop();
            Equal(BrokerState.Stopped, b.State, "Stop twice is harmless");
            Fails(BoxMqErrorCode.NotRunning, () => { var p = b.Port; }, "the port of a stopped broker");
            b.Start();
            Equal(BrokerState.Running, b.State, "a stopped broker starts again");
        }
        // The port is free as soon as Dispose returns: a new broker binds it.
        using (var again = new Broker("listener " + port + " 127.0.0.1"))
        {
            again.Start();
            Equal(port, again.Port, "the same port right after Dispose");
            Run("mosquitto_pub", "-h 127.0.0.1 -p " + port + " -t ping -m 1");
        }
    }

    private static void ConfigError()
    {
        var e = Fails(BoxMqErrorCode.Config, () => new Broker("listener 0 127.0.0.1\nbogus 1"), "a bad line");
        Check(e.Message.Contains("config:2"), "the message names line 2: " + e.Message);
        Throws<ArgumentException>(() => new Broker("listener 0\0"), "U+0000 in the config");
    }

    private static void PortInUse()
    {
        var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        using (var b = new Broker("listener " + port + " 127.0.0.1"))
        {
            try
            {
                var e = Fails(BoxMqErrorCode.Bind, b.Start, "Start on a port in use");
                Check(e.Message.Contains("127.0.0.1:" + port), "the message names the address: " + e.Message);
                Equal(BrokerState.Failed, b.State, "the state after a failed Start");
                Check(b.FailureReason.StartsWith("cannot listen on 127.0.0.1:" + port), "the reason: " + b.FailureReason);
            }
            finally
            {
                taken.Stop();
            }
            b.Start();
            Equal(BrokerState.Running, b.State, "started once the port is free");
            Equal("", b.FailureReason, "no failure any more");
            Equal(port, b.Port, "on the port asked for");
        }
    }

    private static void ShellyPress()
    {
        using (var b = Started())
        using (var app = b.CreateClient("dashboard"))
        using (var polled = app.Subscribe("shellies/+/input_event/0", 1))
        {
            var got = new BlockingQueue<Message>();
            using (var called = app.Subscribe("shellies/#", 2, got.Add))
            {
                Run("mosquitto_pub", "-h 127.0.0.1 -p " + b.Port + " -q 1 -t " + Press + " -m \"{\\\"event\\\":\\\"S\\\",\\\"event_cnt\\\":7}\"");
                var m = Receive(polled, "the polled subscription");
                Equal(Press, m.Topic, "topic");
                Equal("{\"event\":\"S\",\"event_cnt\":7}", m.PayloadText, "payload");
                Equal(1, m.Qos, "QoS 1 published, 1 subscribed");
                Equal(false, m.Retain, "a live message");
                var c = got.Take(Wait, "the callback subscription");
                Equal(Press, c.Topic, "topic in the callback");
                Equal(1, c.Qos, "QoS 1 published, 2 subscribed");
                Nothing(polled, "one press");
                var stats = b.Stats;
                Check(stats.MessagesReceived >= 1, "counted as received: " + stats.MessagesReceived);
                Check(stats.MessagesSent >= 2, "counted as sent twice: " + stats.MessagesSent);
            }
        }
    }

    private static void AppToNetwork()
    {
        using (var b = Started())
        using (var app = b.CreateClient("panel"))
        {
            long before = b.Stats.Subscriptions;
            var info = new ProcessStartInfo("mosquitto_sub", "-h 127.0.0.1 -p " + b.Port + " -q 1 -t panel/cmd -C 1 -W 10 -v")
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
            };
            using (var sub = Process.Start(info))
            {
                WaitForSubscriptions(b, before + 1);
                app.Publish("panel/cmd", Utf8Bytes("open"), 1, false);
                string line = sub.StandardOutput.ReadLine();
                Equal("panel/cmd open", line, "what mosquitto_sub printed");
                Check(sub.WaitForExit(10000), "mosquitto_sub ended after one message");
            }
        }
    }

    private static void InProcess()
    {
        using (var b = Started())
        using (var a = b.CreateClient("a"))
        using (var c = b.CreateClient("c"))
        {
            a.Publish("room/temp", Utf8Bytes("21.5"), 1, true);
            using (var s = c.Subscribe("room/+", 0))
            {
                var r = Receive(s, "the retained message");
                Equal("room/temp", r.Topic, "retained topic");
                Equal("21.5", r.PayloadText, "retained payload");
                Equal(true, r.Retain, "sent because of the subscription");
                Equal(0, r.Qos, "QoS 1 published, 0 subscribed");

                var binary = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
                a.Publish("room/raw", binary, 2, false);
                var m = Receive(s, "binary");
                Check(binary.SequenceEqual(m.Payload), "every byte value comes back");
                Equal(false, m.Retain, "a live message");

                a.Publish("room/empty", null, 0, false);
                Equal(0, Receive(s, "empty").Payload.Length, "an empty payload");
                Nothing(s, "three messages");
            }
            // The other way, and text beyond ASCII in topic and payload.
            using (var s = a.Subscribe("küche/#", 2))
            {
                c.Publish("küche/licht", Utf8Bytes("an ✓"), 2, false);
                var m = Receive(s, "UTF-8");
                Equal("küche/licht", m.Topic, "a UTF-8 topic");
                Equal("an ✓", m.PayloadText, "a UTF-8 payload");
                Equal(2, m.Qos, "QoS 2 both sides");
            }
            // Deleting the retained message with an empty retained payload
            // (the count also holds the broker's own $SYS topics).
            long held = b.Stats.RetainedMessages;
            a.Publish("room/temp", new byte[0], 1, true);
            Equal(held - 1, b.Stats.RetainedMessages, "one retained message less");
            using (var s = c.Subscribe("room/#", 1))
            {
                Nothing(s, "no retained message any more");
            }
        }
    }

    private static void InvalidArguments()
    {
        using (var b = Started())
        using (var app = b.CreateClient("app"))
        {
            Fails(BoxMqErrorCode.InvalidTopic, () => app.Publish("a/+", null, 0, false), "a wildcard in a topic name");
            Fails(BoxMqErrorCode.InvalidTopic, () => app.Publish("", null, 0, false), "an empty topic");
            Fails(BoxMqErrorCode.InvalidTopic, () => app.Subscribe("a/#/b", 0), "# not last");
            Fails(BoxMqErrorCode.InvalidArgument, () => app.Publish("a", null, 3, false), "QoS 3");
            Fails(BoxMqErrorCode.InvalidArgument, () => app.Subscribe("a", -1), "QoS -1");
            Throws<ArgumentNullException>(() => app.Publish(null, null, 0, false), "a null topic");
            Throws<ArgumentException>(() => app.Publish("a\0b", null, 0, false), "U+0000 in a topic");
            Throws<ArgumentException>(() => app.Publish("a\ud800", null, 0, false), "a lone surrogate");
            Throws<ArgumentNullException>(() => app.Subscribe("a", 0, null), "a null callback");
            using (var s = app.Subscribe("ok", 0))
            {
                app.Publish("ok", Utf8Bytes("still here"), 0, false);
                Equal("still here", Receive(s, "after the errors").PayloadText, "the client goes on");
            }
        }
    }

    [DllImport("libc.so.6")]
    private static extern int gettid();

    /// <summary>The native name of the calling thread (Linux).</summary>
    private static string NativeThreadName()
    {
        return File.ReadAllText("/proc/self/task/" + gettid() + "/comm").Trim();
    }

    private static void CallbackThread()
    {
        using (var b = Started())
        using (var app = b.CreateClient("app"))
        {
            int caller = Thread.CurrentThread.ManagedThreadId;
            var seen = new BlockingQueue<string>();
            using (app.Subscribe("t", 0, m => seen.Add(Thread.CurrentThread.ManagedThreadId + " " + NativeThreadName())))
            {
                app.Publish("t", null, 0, false);
                string[] where = seen.Take(Wait, "the callback").Split(' ');
                Check(int.Parse(where[0]) != caller, "not on the caller's thread");
                Equal("boxmq-callback", where[1], "the native thread's name");
            }
        }
    }

    private static void CallbackThrows()
    {
        using (var b = Started())
        using (var app = b.CreateClient("app"))
        {
            var got = new BlockingQueue<string>();
            var traced = new Listener();
            Trace.Listeners.Add(traced);
            using (var s = app.Subscribe("t", 1, m =>
            {
                if (m.PayloadText == "bad")
                {
                    throw new InvalidOperationException("the handler failed on " + m.PayloadText);
                }
                got.Add(m.PayloadText);
            }))
            {
                app.Publish("t", Utf8Bytes("bad"), 1, false);
                app.Publish("t", Utf8Bytes("bad"), 1, false);
                app.Publish("t", Utf8Bytes("good"), 1, false);
                Equal("good", got.Take(Wait, "the message after the exceptions"), "the subscription goes on");
                Equal(2L, s.CallbackFailures, "both exceptions counted");
                Check(s.LastCallbackException is InvalidOperationException, "the exception is kept");
                Equal(BrokerState.Running, b.State, "the broker goes on");
                Trace.Listeners.Remove(traced);
                Equal(2, traced.Lines.Count(l => l.Contains("the callback of subscription t threw") && l.Contains("the handler failed on bad")), "traced: " + string.Join(" | ", traced.Lines));
            }
        }
    }

    private static void CallbackDisposesItself()
    {
        using (var b = Started())
        using (var app = b.CreateClient("app"))
        {
            var done = new BlockingQueue<bool>();
            Subscription self = null;
            var ready = new ManualResetEvent(false);
            self = app.Subscribe("t", 0, m =>
            {
                ready.WaitOne();
                self.Dispose();
                done.Add(self.IsClosed);
            });
            ready.Set();
            app.Publish("t", null, 0, false);
            Equal(true, done.Take(Wait, "the callback returned"), "disposed from inside");
            self.Dispose();
            app.Publish("t", null, 0, false); // nobody is called any more
            Thread.Sleep(100);
            Check(done.Count == 0, "no call after the Dispose");
        }
    }

    private static void StopEndsEverything()
    {
        var b = Started();
        var app = b.CreateClient("app");
        var s = app.Subscribe("t", 1);
        app.Publish("t", Utf8Bytes("before"), 1, false);
        b.Stop();
        Equal("before", Receive(s, "what came before the stop").PayloadText, "taken after the stop");
        Message m;
        Check(!s.TryReceive(Wait, out m), "nothing more");
        Check(s.IsClosed, "the subscription has ended");
        Throws<BoxMqException>(() => app.Publish("t", null, 0, false), "publishing on a stopped broker");
        Fails(BoxMqErrorCode.NotRunning, () => app.Subscribe("t", 0), "subscribing on a stopped broker");
        // Any order of disposal.
        b.Dispose();
        s.Dispose();
        app.Dispose();
    }

    private static void Disposal()
    {
        var b = Started();
        var app = b.CreateClient("app");
        var s = app.Subscribe("t", 0);
        var cb = app.Subscribe("u", 0, m => { });
        app.Dispose();
        app.Dispose();
        Throws<ObjectDisposedException>(() => app.Publish("t", null, 0, false), "publish after Dispose");
        using (var other = b.CreateClient("other"))
        {
            other.Publish("t", Utf8Bytes("x"), 0, false);
            Equal("x", Receive(s, "a subscription outlives its client").PayloadText, "after the client's Dispose");
        }
        Throws<InvalidOperationException>(() => { Message m; cb.TryReceive(TimeSpan.Zero, out m); }, "TryReceive on a callback subscription");
        s.Dispose();
        s.Dispose();
        Check(s.IsClosed, "disposed is closed");
        Throws<ObjectDisposedException>(() => { Message m; s.TryReceive(TimeSpan.Zero, out m); }, "TryReceive after Dispose");
        cb.Dispose();
        b.Dispose();
        b.Dispose();
        Equal(BrokerState.Stopped, b.State, "a disposed broker");
        b.Stop();
        Throws<ObjectDisposedException>(b.Start, "Start after Dispose");
        Throws<ObjectDisposedException>(() => b.CreateClient("late"), "a client after Dispose");
    }

    // ---- native resources --------------------------------------------------

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public UIntPtr Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [DllImport("libc.so.6")]
    private static extern MallInfo2 mallinfo2();

    private struct Usage
    {
        public long Rss, Malloc, Fds, Threads;

        public override string ToString()
        {
            return string.Format("rss {0:F1} MiB, malloc in use {1:F1} MiB, fds {2}, threads {3}",
                Rss / 1048576.0, Malloc / 1048576.0, Fds, Threads);
        }
    }

    /// <summary>The process's resident memory, native heap in use (glibc), open fds and threads.</summary>
    private static Usage Measure()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        var status = File.ReadAllLines("/proc/self/status");
        long rssKb = long.Parse(status.First(l => l.StartsWith("VmRSS:")).Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries)[1]);
        var mi = mallinfo2();
        return new Usage
        {
            Rss = rssKb * 1024,
            Malloc = (long)mi.Uordblks.ToUInt64() + (long)mi.Hblkhd.ToUInt64(),
            Fds = Directory.GetFileSystemEntries("/proc/self/fd").Length,
            Threads = Directory.GetDirectories("/proc/self/task").Length,
        };
    }

    /// <summary>One broker's life with a client, a polled subscription and one message.</summary>
    private static void Cycle(bool withCallback)
    {
        using (var b = Started())
        using (var app = b.CreateClient("app"))
        using (var s = app.Subscribe("t", 1))
        {
            app.Publish("t", Utf8Bytes("x"), 1, false);
            Receive(s, "the cycle's message");
            if (withCallback)
            {
                var got = new BlockingQueue<int>();
                using (app.Subscribe("t", 0, m => got.Add(1)))
                {
                    app.Publish("t", Utf8Bytes("y"), 0, false);
                    got.Take(Wait, "the cycle's callback");
                }
            }
        }
    }

    /// <summary>The same, left to the finalizers.</summary>
    private static void AbandonedCycle()
    {
        var b = Started();
        var app = b.CreateClient("app");
        app.Subscribe("t", 1);
        app.Subscribe("t", 0, m => { });
        app.Publish("t", Utf8Bytes("x"), 1, false);
    }

    private static void Cycles()
    {
        // Warm-up of both kinds: 100 brokers alive at once before the
        // finalizers run take memory (thread stacks, malloc arenas) that the
        // process keeps for reuse; a leak shows as growth after it.
        for (int i = 0; i < 50; i++)
        {
            Cycle(i % 10 == 0);
        }
        for (int i = 0; i < cycles / 10; i++)
        {
            AbandonedCycle();
        }
        var before = Measure();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < cycles; i++)
        {
            Cycle(i % 10 == 0);
        }
        double disposedMs = watch.Elapsed.TotalMilliseconds;
        var afterDisposed = Measure();
        watch.Restart();
        int abandoned = cycles / 10;
        for (int i = 0; i < abandoned; i++)
        {
            AbandonedCycle();
        }
        var afterFinalized = Measure();
        double finalizedMs = watch.Elapsed.TotalMilliseconds;
        Equal(0, Callbacks(), "callback registry entries left");
        Console.WriteLine("measure: before {0}", before);
        Console.WriteLine("measure: after {0} disposed cycles ({1:F2} ms each) {2}", cycles, disposedMs / cycles, afterDisposed);
        Console.WriteLine("measure: after {0} finalized cycles ({1:F2} ms each) {2}", abandoned, finalizedMs / abandoned, afterFinalized);
        foreach (var after in new[] { afterDisposed, afterFinalized })
        {
            Check(after.Fds <= before.Fds + 2, "open fds: " + before.Fds + " -> " + after.Fds);
            Check(after.Threads <= before.Threads + 2, "threads: " + before.Threads + " -> " + after.Threads);
            Check(after.Malloc <= before.Malloc + 2 * 1048576, "native heap: " + before + " -> " + after);
            Check(after.Rss <= before.Rss + 16 * 1048576, "resident memory: " + before + " -> " + after);
        }
    }

    // ---- hooks and events ------------------------------------------------

    /// <summary>Runs a program to its end (at most Wait); its exit code.</summary>
    private static int ExitCode(string program, string arguments)
    {
        string stdout, stderr;
        return Outcome(program, arguments, out stdout, out stderr);
    }

    /// <summary>Runs a program to its end (at most Wait); its exit code and output.</summary>
    private static int Outcome(string program, string arguments, out string stdout, out string stderr)
    {
        var info = new ProcessStartInfo(program, arguments)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using (var p = Process.Start(info))
        {
            var err = p.StandardError.ReadToEndAsync();
            stdout = p.StandardOutput.ReadToEnd();
            stderr = err.Result;
            Check(p.WaitForExit((int)Wait.TotalMilliseconds), program + " ended");
            return p.ExitCode;
        }
    }

    private static string Pub(Broker b, string rest)
    {
        return "-h 127.0.0.1 -p " + b.Port + " -q 1 " + rest;
    }

    private static void HookUserTable()
    {
        var users = new Dictionary<string, string> { { "button-door", "d00r" } };
        var asked = new BlockingQueue<ConnectRequest>();
        using (var b = new Broker("listener 0 127.0.0.1"))
        {
            b.OnConnect = req =>
            {
                asked.Add(req);
                string password;
                return req.Username != null && req.Password != null
                    && users.TryGetValue(req.Username, out password)
                    && Encoding.UTF8.GetString(req.Password) == password;
            };
            Check(b.OnConnect != null, "the hook reads back");
            b.Start();
            using (var app = b.CreateClient("dashboard"))
            using (var s = app.Subscribe("door/#", 1))
            {
                // In-process clients are not asked.
                Equal(0, asked.Count, "hook calls for in-process clients");
                Equal(0, ExitCode("mosquitto_pub", Pub(b, "-V mqttv311 -i button-door -u button-door -P d00r -t door/press -m known")), "the known button publishes");
                var r = asked.Take(Wait, "the hook's call for the known button");
                Equal("button-door", r.ClientId, "client id");
                Equal("button-door", r.Username, "user name");
                Equal("d00r", Encoding.UTF8.GetString(r.Password), "password");
                Equal(4, r.Protocol, "MQTT 3.1.1");
                Check(r.Address.StartsWith("127.0.0.1:"), "the peer's address: " + r.Address);
                Equal("known", Receive(s, "the known button's press").PayloadText, "payload");
                Check(ExitCode("mosquitto_pub", Pub(b, "-i button-x -u button-x -P guess -t door/press -m unknown")) != 0, "an unknown button fails to connect");
                Check(ExitCode("mosquitto_pub", Pub(b, "-i button-door2 -u button-door -P wrong -t door/press -m wrong")) != 0, "a wrong password fails");
                Check(ExitCode("mosquitto_pub", Pub(b, "-V mqttv5 -i anon -t door/press -m anonymous")) != 0, "no user name fails (5.0)");
                Equal("button-x", asked.Take(Wait, "the unknown button").Username, "the unknown button's user");
                Equal("button-door", asked.Take(Wait, "wrong password").Username, "the wrong password's user");
                var five = asked.Take(Wait, "the anonymous 5.0 client");
                Equal(null, five.Username, "no user name is null");
                Equal(null, five.Password, "no password is null");
                Equal(5, five.Protocol, "MQTT 5.0");
                Nothing(s, "only the known button's press");
            }
        }
    }

    private static void HookPublishJson()
    {
        using (var b = new Broker("listener 0 127.0.0.1"))
        {
            var seen = new BlockingQueue<PublishRequest>();
            b.OnPublish = m =>
            {
                seen.Add(m);
                if (!m.Topic.StartsWith("shellies/"))
                {
                    return true;
                }
                return m.Payload.Length > 0 && m.Payload[0] == (byte)'{';
            };
            b.Start();
            using (var app = b.CreateClient("dashboard"))
            using (var s = app.Subscribe("shellies/#", 1))
            {
                Run("mosquitto_pub", Pub(b, "-i junk -t " + Press + " -m garbage"));
                Run("mosquitto_pub", Pub(b, "-i junk -r -t " + Press + " -m \"{\\\"event\\\":\\\"S\\\"}\""));
                var junk = seen.Take(Wait, "the hook's call for the junk");
                Equal("junk", junk.ClientId, "client id");
                Equal(Press, junk.Topic, "topic");
                Equal("garbage", Encoding.UTF8.GetString(junk.Payload), "payload");
                Equal(1, junk.Qos, "QoS");
                Equal(false, junk.Retain, "not retained");
                Equal(true, seen.Take(Wait, "the JSON one").Retain, "the retain flag");
                var m = Receive(s, "the JSON press");
                Equal("{\"event\":\"S\"}", m.PayloadText, "only the JSON press is routed");
                Nothing(s, "the garbage was not routed");
                // The application's own publications are not asked.
                app.Publish(Press, Utf8Bytes("in-process"), 1, false);
                Equal("in-process", Receive(s, "an in-process publication").PayloadText, "not filtered");
                Equal(0, seen.Count, "hook calls for in-process publications");
            }
        }
    }

    private static void HookSubscribe()
    {
        using (var b = new Broker("listener 0 127.0.0.1"))
        {
            b.OnSubscribe = r => !r.Filter.StartsWith("admin/");
            b.HookTimeout = TimeSpan.FromSeconds(2);
            Equal(TimeSpan.FromSeconds(2), b.HookTimeout, "the timeout reads back");
            b.Start();
            Fails(BoxMqErrorCode.AlreadyRunning, () => b.OnConnect = r => true, "OnConnect while running");
            Fails(BoxMqErrorCode.AlreadyRunning, () => b.HookTimeout = TimeSpan.FromSeconds(1), "HookTimeout while running");
            Throws<ArgumentOutOfRangeException>(() => b.HookTimeout = TimeSpan.Zero, "a zero timeout");
            // mosquitto_sub -d prints the SUBACK's return code: 128 (0x80) is a refusal.
            string stdout, stderr;
            Outcome("mosquitto_sub", "-h 127.0.0.1 -p " + b.Port + " -t admin/secret -C 1 -W 5 -d", out stdout, out stderr);
            Check(stdout.Contains("Subscribed (mid: 1): 128"), "the SUBACK refuses the filter (0x80, MQTT 3.1.1 section 3.9.3): " + stdout + stderr);
            using (var app = b.CreateClient("app"))
            {
                long before = b.Stats.Subscriptions;
                var info = new ProcessStartInfo("mosquitto_sub", "-h 127.0.0.1 -p " + b.Port + " -t panel/cmd -C 1 -W 10")
                {
                    UseShellExecute = false,
                    RedirectStandardOutput = true,
                };
                using (var sub = Process.Start(info))
                {
                    WaitForSubscriptions(b, before + 1);
                    app.Publish("panel/cmd", Utf8Bytes("open"), 0, false);
                    Equal("open", sub.StandardOutput.ReadLine(), "an allowed filter is granted");
                    Check(sub.WaitForExit(10000), "mosquitto_sub ended");
                }
            }
            b.Stop();
            b.OnSubscribe = null;
            Equal(null, b.OnSubscribe, "removed while stopped");
        }
    }

    private static void HookThrows()
    {
        var traced = new Listener();
        Trace.Listeners.Add(traced);
        try
        {
            using (var b = new Broker("listener 0 127.0.0.1"))
            {
                b.OnConnect = req =>
                {
                    if (req.ClientId == "bad")
                    {
                        throw new InvalidOperationException("the user table is down");
                    }
                    return true;
                };
                b.Start();
                Check(ExitCode("mosquitto_pub", Pub(b, "-i bad -t t -m 1")) != 0, "a hook that throws refuses");
                Equal(0, ExitCode("mosquitto_pub", Pub(b, "-i good -t t -m 1")), "the next client is let in");
                Equal(BrokerState.Running, b.State, "the broker goes on");
            }
        }
        finally
        {
            Trace.Listeners.Remove(traced);
        }
        Equal(1, traced.Lines.Count(l => l.Contains("the OnConnect hook threw") && l.Contains("the user table is down")), "traced: " + string.Join(" | ", traced.Lines));
        Equal(0, Hooks(), "hook registry entries left after Dispose");
    }

    private static BrokerEvent NextEvent(Broker b, string what)
    {
        BrokerEvent e;
        Check(b.Events.TryReceive(Wait, out e), what + ": an event within " + Wait);
        return e;
    }

    private static void EventsOfASubscriber()
    {
        using (var b = new Broker("listener 0 127.0.0.1"))
        {
            BrokerEvent none;
            Fails(BoxMqErrorCode.NotRunning, () => b.Events.TryReceive(TimeSpan.Zero, out none), "events before Start");
            b.Start();
            using (var app = b.CreateClient("app"))
            {
                Check(!b.Events.TryReceive(TimeSpan.FromMilliseconds(100), out none), "no event for an in-process client, got " + none);
                var info = new ProcessStartInfo("mosquitto_sub", "-h 127.0.0.1 -p " + b.Port + " -i watcher -q 1 -t shellies/+/input_event/0 -C 1 -W 10")
                {
                    UseShellExecute = false,
                    RedirectStandardOutput = true,
                };
                using (var sub = Process.Start(info))
                {
                    var c = NextEvent(b, "connect");
                    Equal(BrokerEventKind.Connected, c.Kind, "first: " + c);
                    Equal("watcher", c.ClientId, "who connected");
                    Equal(null, c.Topic, "no topic");
                    var s = NextEvent(b, "subscribe");
                    Equal(BrokerEventKind.Subscribed, s.Kind, "then: " + s);
                    Equal("watcher", s.ClientId, "who subscribed");
                    Equal("shellies/+/input_event/0", s.Topic, "the filter");
                    app.Publish(Press, Utf8Bytes("{}"), 1, false);
                    Equal("{}", sub.StandardOutput.ReadLine(), "mosquitto_sub got the press");
                    Check(sub.WaitForExit(10000), "mosquitto_sub ended");
                    var d = NextEvent(b, "disconnect");
                    Equal(BrokerEventKind.Disconnected, d.Kind, "last: " + d);
                    Equal("watcher", d.ClientId, "who disconnected");
                    Equal("clean", d.Reason, "mosquitto_sub sends DISCONNECT");
                }
                Equal(0L, b.EventsLost, "nothing lost");
            }
        }
    }

    /// <summary>Live hook registry entries, read by reflection (internal).</summary>
    private static int Hooks()
    {
        var type = typeof(Broker).Assembly.GetType("BoxMq.HookRegistry", true);
        var count = type.GetProperty("Count", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static);
        return (int)count.GetValue(null, null);
    }

    /// <summary>Live callback registry entries, read by reflection (internal).</summary>
    private static int Callbacks()
    {
        var type = typeof(Broker).Assembly.GetType("BoxMq.Callbacks", true);
        var count = type.GetProperty("Count", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static);
        return (int)count.GetValue(null, null);
    }
}

/// <summary>A trace listener that keeps what it is told.</summary>
internal sealed class Listener : TraceListener
{
    private readonly List<string> lines = new List<string>();

    public string[] Lines
    {
        get { lock (lines) { return lines.ToArray(); } }
    }

    public override void Write(string message)
    {
        lock (lines) { lines.Add(message); }
    }

    public override void WriteLine(string message)
    {
        Write(message);
    }
}

/// <summary>A queue a callback fills and the test thread takes from.</summary>
internal sealed class BlockingQueue<TItem>
{
    private readonly Queue<TItem> items = new Queue<TItem>();

    public int Count
    {
        get { lock (items) { return items.Count; } }
    }

    public void Add(TItem item)
    {
        lock (items)
        {
            items.Enqueue(item);
            Monitor.PulseAll(items);
        }
    }

    public TItem Take(TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (items)
        {
            while (items.Count == 0)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(items, left))
                {
                    if (items.Count == 0)
                    {
                        throw new Exception(what + ": nothing within " + timeout);
                    }
                }
            }
            return items.Dequeue();
        }
    }
}
