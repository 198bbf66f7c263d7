using System.Reflection;
using System.Runtime.InteropServices;

// Kept equal to ffi/Cargo.toml's version by tests/dotnet.rs; dotnet/pack.sh
// names the package after it.
[assembly: AssemblyTitle("BoxMq")]
[assembly: AssemblyDescription("The boxmq MQTT broker inside a .NET application, over its C ABI")]
[assembly: AssemblyProduct("boxmq")]
[assembly: AssemblyVersion("0.1.0.0")]
[assembly: AssemblyFileVersion("0.1.0.0")]
[assembly: AssemblyInformationalVersion("0.1.0")]
[assembly: ComVisible(false)]
