#!/usr/bin/env bash
# Counts the instructions each phase of `fieldbench replay` executes, with
# valgrind's callgrind: unlike wall time, which drifts by up to 40 % on this
# shared 2-core machine, the count is the same for the same build and trace
# (hash tables are seeded the same way every run: SWIFT_DETERMINISTIC_HASHING).
#
#   bash bench/instructions.sh TRACE.jsonl [OUT.callgrind] [BASELINE.callgrind]
#
# TRACE must be uncompressed (zcat it first); a small one keeps a run near a
# minute (gen_trace.py --households 500 --replicas 20 --steps 50000). Needs a
# release build (swift build -c release --product fieldbench). valgrind cannot
# run fieldbench itself (it stops at the first thread the async runtime makes),
# so this links the replay (Sources/FieldBench/Trace.swift and Replay.swift,
# without gzip) into a plain program against the release SyncCore objects.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
trace="${1:?usage: bench/instructions.sh TRACE.jsonl [OUT.callgrind] [BASELINE.callgrind]}"
out="${2:-/tmp/fieldsync.callgrind}"
build="$root/.build/release"
[ -d "$build/SyncCore.build" ] || { echo "Build first: swift build -c release --product fieldbench" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$root/Sources/FieldBench/Trace.swift" "$root/Sources/FieldBench/Replay.swift" "$work/"
python3 - "$work" <<'PY'
import sys, pathlib
for name in ("Trace.swift", "Replay.swift"):
    path = pathlib.Path(sys.argv[1]) / name
    text = path.read_text().replace("import SyncServer\n", "")
    text = text.replace('if path.hasSuffix(".gz") {\n            try Gzip.decompressStream(file, feed)\n        } else {\n            try feed(file[...])\n        }',
                        'try feed(file[...])')
    text = text.replace("bytes.count > Gzip.threshold ? Gzip.compress(bytes).count : bytes.count", "bytes.count")
    path.write_text(text)
PY
cat > "$work/main.swift" <<'SWIFT'
import Foundation
let result = try Replay.run(path: CommandLine.arguments[1])
print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
SWIFT
(cd "$work" && swiftc -O -wmo -module-name Harness main.swift Trace.swift Replay.swift -I "$build/Modules" "$build"/SyncCore.build/*.o -o replay)
SWIFT_DETERMINISTIC_HASHING=1 valgrind --tool=callgrind --callgrind-out-file="$out" "$work/replay" "$trace" > /dev/null 2> "$work/valgrind.log" || { cat "$work/valgrind.log" >&2; exit 1; }
python3 "$here/instructions_by_phase.py" "$out" ${3:+"$3"}
