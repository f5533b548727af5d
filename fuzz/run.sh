#!/usr/bin/env bash
# Coverage-guided fuzzing of ConvLab's parsers with SharpFuzz + afl-fuzz.
#   fuzz/run.sh TARGET SECONDS          one target (see `fuzz/run.sh list`)
#   fuzz/run.sh all SECONDS             every target in turn, SECONDS each
#   fuzz/run.sh T1,T2 SECONDS           several, in turn
#   fuzz/run.sh TARGET 1000000x         until about that many executions instead of for a time
# Builds and instruments once per call (FUZZ_NO_BUILD=1 reuses fuzz/out/bin), generates the seed corpora with the
# library's own writers, runs afl-fuzz, then prints executions, paths/edges and findings per target and replays every
# crash and hang with the uninstrumented build to show the exception. A later call on the same target resumes its
# queue (fuzz/out/afl/TARGET); FUZZ_FRESH=1 starts over. Needs afl++ (apt-get install -y afl++); CI never runs this.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/out"
publish="$out/publish"   # plain build: seeds and replays
bin="$out/bin"           # SharpFuzz-instrumented copy: what afl-fuzz runs
shared="${CONVLAB_SHARED:-$here/../../shared}"

if [[ "${1:-}" == "list" ]]; then dotnet "$publish/ConvLab.Fuzz.dll" list; exit 0; fi
if [[ $# -ne 2 || ! "$2" =~ ^[0-9]+x?$ ]]; then
  echo "usage: fuzz/run.sh TARGET[,TARGET...]|all SECONDS|EXECUTIONSx" >&2; exit 2
fi
if [[ "$2" == *x ]]; then limit=(-E "${2%x}"); what="${2%x} executions"; else limit=(-V "$2"); what="$2 s"; fi
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install -y afl++" >&2; exit 2; }

if [[ "${FUZZ_NO_BUILD:-0}" != 1 || ! -d "$bin" ]]; then
  dotnet publish "$here/ConvLab.Fuzz" -c Release -o "$publish" --nologo -v quiet
  (cd "$here" && dotnet tool restore >/dev/null)
  rm -rf "$bin"; cp -r "$publish" "$bin"
  # Only the parsers' own code (and protobuf, which parses ONNX) is instrumented; the framework is not.
  for dll in ConvLab.dll ConvLab.Imaging.dll ConvLab.Onnx.dll Google.Protobuf.dll; do
    (cd "$here" && dotnet sharpfuzz "$bin/$dll" >/dev/null)
  done
  rm -rf "$out/seeds"
  dotnet "$publish/ConvLab.Fuzz.dll" seeds "$out/seeds" $([[ -d "$shared" ]] && echo --shared "$shared")
fi

targets="$1"
[[ "$targets" == all ]] && targets="$(dotnet "$publish/ConvLab.Fuzz.dll" list | paste -sd,)"

export AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1 AFL_FORKSRV_INIT_TMOUT=120000 AFL_AUTORESUME=1
# A reader that tries to allocate far beyond its input (a valid spec may ask for 1 GiB of weights) fails as OutOfMemoryException (a finding) instead of
# swapping a shared machine.
export DOTNET_GCHeapHardLimit=0x80000000 DOTNET_TieredCompilation=0
export CONVLAB_FUZZ_WORK="${CONVLAB_FUZZ_WORK:-/dev/shm}"

summary=()
IFS=, read -ra list <<<"$targets"
for t in "${list[@]}"; do
  dir="$out/afl/$t"
  [[ "${FUZZ_FRESH:-0}" == 1 ]] && rm -rf "$dir"
  mkdir -p "$dir"
  dict=(); [[ -f "$here/dict/$t.dict" ]] && dict=(-x "$here/dict/$t.dict")
  echo "== $t: afl-fuzz for $what (log $dir.log)"
  afl-fuzz -i "$out/seeds/$t" -o "$dir" -t "${FUZZ_TIMEOUT_MS:-10000}" -m none "${limit[@]}" "${dict[@]}" \
    -- dotnet "$bin/ConvLab.Fuzz.dll" afl "$t" >"$dir.log" 2>&1 || { echo "afl-fuzz failed for $t:"; tail -20 "$dir.log"; continue; }
  stats="$dir/default/fuzzer_stats"
  get() { awk -F' *: *' -v k="$1" '$1==k {print $2}' "$stats"; }
  line="$(printf '%-12s execs %10s  exec/s %8s  paths %5s  edges %5s  map %7s  crashes %3s  hangs %3s  run %6ss' \
    "$t" "$(get execs_done)" "$(get execs_per_sec)" "$(get corpus_count)" "$(get edges_found)" "$(get bitmap_cvg)" \
    "$(get saved_crashes)" "$(get saved_hangs)" "$(get run_time)")"
  echo "$line"; summary+=("$line")
  for kind in crashes hangs; do
    if compgen -G "$dir/default/$kind/id:*" >/dev/null; then
      echo "-- $t $kind (replayed without instrumentation):"
      timeout 300 dotnet "$publish/ConvLab.Fuzz.dll" replay "$t" "$dir/default/$kind" || true
    fi
  done
done
echo "== summary"
printf '%s\n' "${summary[@]}"
