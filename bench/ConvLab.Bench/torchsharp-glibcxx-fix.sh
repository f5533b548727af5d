#!/usr/bin/env bash
# Makes TorchSharp-cpu 0.107's native glue load on Debian 12 (run by the bench's build, idempotent).
# libLibTorchSharp.so is built with GCC 13 and asks libstdc++ for one symbol that only GCC 13's has,
# std::ios_base_library_init() (version GLIBCXX_3.4.32); Debian 12 ships GCC 12's libstdc++, so the load
# fails with "version `GLIBCXX_3.4.32' not found". Where that is so, this script
#   1. builds a shim library next to it that defines the symbol as a no-op (GCC 12's libstdc++ sets up
#      iostreams by itself), and
#   2. marks the GLIBCXX_3.4.32 requirement weak (VER_FLG_WEAK), drops the symbol's version, and makes
#      the library load the shim from its own folder ($ORIGIN).
# It patches the copy in the bench's output folder, never the NuGet cache, so a fresh restore works as is.
# Needs gcc, patchelf, python3 and binutils (Debian: apt-get install gcc patchelf python3 binutils).
# Usage: torchsharp-glibcxx-fix.sh <folder holding libLibTorchSharp.so>
set -euo pipefail
dir=${1:?usage: $0 <folder holding libLibTorchSharp.so>}
lib=$dir/libLibTorchSharp.so
[ -f "$lib" ] || { echo "torchsharp-glibcxx-fix: error: no $lib (TorchSharp-cpu not restored/copied?)" >&2; exit 1; }
for tool in objdump strings ldconfig; do
  command -v $tool >/dev/null || { echo "torchsharp-glibcxx-fix: error: '$tool' not found: apt-get install binutils" >&2; exit 1; }
done
# awk reads to the end: an early exit would kill ldconfig with SIGPIPE, which pipefail turns into a silent failure.
stdcxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ && !p {p = $NF} END {print p}')
needs=$(objdump -T "$lib" | grep -c "GLIBCXX_3.4.32" || true)
has=$( [ -n "$stdcxx" ] && strings -a "$stdcxx" | grep -c "GLIBCXX_3.4.32" || true)
if [ "$needs" -gt 0 ] && [ "${has:-0}" -eq 0 ]; then
  missing=""
  for tool in gcc patchelf python3; do command -v $tool >/dev/null || missing="$missing $tool"; done
  if [ -n "$missing" ]; then
    echo "torchsharp-glibcxx-fix: error: TorchSharp's libLibTorchSharp.so needs GLIBCXX_3.4.32, which this libstdc++ lacks;" \
         "patching it needs:$missing (Debian: apt-get install$missing)" >&2
    exit 1
  fi
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  echo 'void _ZSt21ios_base_library_initv(void) {}' > "$tmp/shim.c"
  gcc -shared -fPIC -O2 -o "$dir/libiosinit_shim.so" "$tmp/shim.c"
  # Patch a copy and move it in at the end, so an interrupted run never leaves a half-patched library.
  cp "$lib" "$tmp/lib.so"
  python3 - "$tmp/lib.so" <<'PY'
import struct, sys
path = sys.argv[1]; data = bytearray(open(path, 'rb').read())
shoff, = struct.unpack_from('<Q', data, 0x28); shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3A)
sh = lambda i: struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * shentsize)
cstr = lambda off: bytes(data[off:data.index(b'\0', off)])
secs = {cstr(sh(shstrndx)[4] + sh(i)[0]): sh(i) for i in range(shnum)}
verneed, dynstr = secs[b'.gnu.version_r'][4], secs[b'.dynstr'][4]
off = verneed
while True:
    _, cnt, _, aux, nxt = struct.unpack_from('<HHIII', data, off); a = off + aux
    for _ in range(cnt):
        _, flags, _, nm, anext = struct.unpack_from('<IHHII', data, a)
        if cstr(dynstr + nm) == b'GLIBCXX_3.4.32': struct.pack_into('<H', data, a + 4, flags | 2)
        a += anext
    if nxt == 0: break
    off += nxt
open(path, 'wb').write(data)
PY
  patchelf --clear-symbol-version _ZSt21ios_base_library_initv "$tmp/lib.so"
  patchelf --add-needed libiosinit_shim.so "$tmp/lib.so"
  patchelf --set-rpath '$ORIGIN' "$tmp/lib.so"
  mv -f "$tmp/lib.so" "$lib"
  echo "torchsharp-glibcxx-fix: patched $lib"
fi
if ldd "$lib" 2>&1 | grep -v "weak version" | grep "not found" >/dev/null; then
  echo "torchsharp-glibcxx-fix: error: still unresolved in $lib: $(ldd "$lib" 2>&1 | grep 'not found' | tr '\n' ' ')" >&2; exit 1
fi
