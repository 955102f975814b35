/* Wine 8 (Debian 12's) lacks bcryptprimitives.dll, from which Rust's standard library takes
 * ProcessPrng since Rust 1.78; Windows has had it since Windows 8. scripts/cross_check.sh
 * builds this stand-in with MinGW and puts it beside lookalike.exe, only to run the Windows
 * build under that wine: it fills the buffer from RtlGenRandom, as Windows' own does from the
 * same system generator. It is never shipped. */
#include <windows.h>
#include <ntsecapi.h>
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) return FALSE;
        data += chunk; len -= chunk;
    }
    return TRUE;
}
