/* Test-only stand-in for Windows 10's bcryptprimitives.dll, which Wine 8
 * (Debian 12) lacks and Rust's std imports for ProcessPrng. It forwards to
 * RtlGenRandom (advapi32's SystemFunction036). tests/windows.rs builds it
 * with x86_64-w64-mingw32-gcc and puts it beside the exe under test only;
 * it is never shipped (Windows 10 has the real one). */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
