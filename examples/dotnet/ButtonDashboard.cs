// A dashboard with the broker inside, in C#: Shelly buttons connect over
// TCP and the program prints every press, with no separate MQTT server.
// The twin of examples/button_dashboard.rs and examples/c/button_dashboard.c,
// with the same output, built on MqttServerDataSource.
//
//   mcs -target:library -out:BoxMq.dll dotnet/BoxMq/*.cs
//   mcs -r:BoxMq.dll -out:ButtonDashboard.exe examples/dotnet/*.cs
//   LD_LIBRARY_PATH=target/release-lib mono ButtonDashboard.exe 1883
//   mosquitto_pub -p 1883 -t shellies/shellybutton1-A4CF12F45A10/input_event/0 \
//       -m '{"event":"S","event_cnt":3}'
//
// prints "shellybutton1-A4CF12F45A10: short press (S), count 3". Enter
// (or the end of its input, or Ctrl-C where the runtime reports it: .NET
// does, Mono only on a terminal) stops it. Arguments: [port [address]],
// default 1883 127.0.0.1.

using System;
using System.Text.RegularExpressions;
using System.Threading;
using BoxMq;

namespace BoxMq.Examples
{
    internal static class ButtonDashboard
    {
        private static readonly Regex Device = new Regex("^shellies/([^/]+)/input_event/0$");
        private static readonly Regex EventCode = new Regex("\"event\"\\s*:\\s*\"([A-Z]{1,3})\"");
        private static readonly Regex EventCount = new Regex("\"event_cnt\"\\s*:\\s*([0-9]+)");

        private static int Main(string[] args)
        {
            int port = 1883;
            if (args.Length > 0 && (!int.TryParse(args[0], out port) || port < 0 || port > 65535))
            {
                Console.Error.WriteLine("button_dashboard: \"{0}\" is not a port number", args[0]);
                return 2;
            }
            var source = new MqttServerDataSource
            {
                Port = port,
                Address = args.Length > 1 ? args[1] : "127.0.0.1",
            };
            var stop = new ManualResetEvent(false);
            Console.CancelKeyPress += (sender, e) =>
            {
                e.Cancel = true;
                stop.Set();
            };
            // The end of the input: a line, Ctrl-D, or a closed pipe.
            var input = new Thread(() =>
            {
                Console.In.ReadLine();
                stop.Set();
            });
            input.IsBackground = true;
            input.Start();
            source.MessageReceived += (sender, e) => Console.WriteLine(Describe(e.Topic, e.Payload));
            using (source)
            {
                PrintState(source);
                try
                {
                    source.Start();
                }
                catch (BoxMqException e)
                {
                    PrintState(source);
                    Console.Error.WriteLine("button_dashboard: start: {0}", e.Message);
                    return 1;
                }
                PrintState(source);
                Console.WriteLine("listening on {0}:{1}", source.Address, source.Port);
                Console.WriteLine("waiting for presses on {0}", source.Topic);
                stop.WaitOne();
                source.Stop();
                PrintState(source);
            }
            return 0;
        }

        private static void PrintState(MqttServerDataSource source)
        {
            var state = source.State;
            if (state == BrokerState.Failed)
            {
                Console.WriteLine("state: Failed: {0}", source.FailureReason);
            }
            else
            {
                Console.WriteLine("state: {0}", state);
            }
        }

        /// <summary>"device: kind (code), count n", or the raw event when it is not a button's.</summary>
        private static string Describe(string topic, string payload)
        {
            var device = Device.Match(topic);
            var code = EventCode.Match(payload);
            var count = EventCount.Match(payload);
            if (!device.Success || !code.Success || !count.Success)
            {
                return string.Format("{0}: unreadable event \"{1}\"", topic, payload);
            }
            string kind;
            switch (code.Groups[1].Value)
            {
                case "S": kind = "short press"; break;
                case "L": kind = "long press"; break;
                case "SS": kind = "double press"; break;
                case "SSS": kind = "triple press"; break;
                case "SL": kind = "short then long press"; break;
                case "LS": kind = "long then short press"; break;
                default: kind = "press"; break;
            }
            return string.Format("{0}: {1} ({2}), count {3}",
                device.Groups[1].Value, kind, code.Groups[1].Value, count.Groups[1].Value);
        }
    }
}
