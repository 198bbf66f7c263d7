// Prints what a managed assembly needs from outside, for tests/dotnet.rs:
//
//   mono Inspect.exe BoxMq.dll
//
//   version 0.1.0                       (AssemblyInformationalVersion)
//   reference mscorlib 4.0.0.0          (one line per referenced assembly)
//   pinvoke boxmq boxmq_broker_new      (one line per DllImport: library, entry point)
//
// The assembly is loaded for reflection only: none of its code runs and
// the native library need not be there.

using System;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;

internal static class Inspect
{
    private static int Main(string[] args)
    {
        if (args.Length != 1)
        {
            Console.Error.WriteLine("usage: Inspect.exe ASSEMBLY.dll");
            return 2;
        }
        var assembly = Assembly.LoadFrom(args[0]);
        var info = assembly.GetCustomAttributes(typeof(AssemblyInformationalVersionAttribute), false)
            .Cast<AssemblyInformationalVersionAttribute>().FirstOrDefault();
        Console.WriteLine("version {0}", info == null ? "none" : info.InformationalVersion);
        foreach (var r in assembly.GetReferencedAssemblies().OrderBy(r => r.Name))
        {
            Console.WriteLine("reference {0} {1}", r.Name, r.Version);
        }
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static
            | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        foreach (var type in assembly.GetTypes())
        {
            foreach (var method in type.GetMethods(all))
            {
                if ((method.Attributes & MethodAttributes.PinvokeImpl) == 0)
                {
                    continue;
                }
                var import = method.GetCustomAttributes(typeof(DllImportAttribute), false)
                    .Cast<DllImportAttribute>().FirstOrDefault();
                if (import == null)
                {
                    Console.WriteLine("pinvoke ? {0}.{1}", type.FullName, method.Name);
                    continue;
                }
                Console.WriteLine("pinvoke {0} {1}", import.Value, import.EntryPoint ?? method.Name);
            }
        }
        return 0;
    }
}
