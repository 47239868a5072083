#!/usr/bin/env bash
# Benchmark (issue 7): guest inspection of the 3 GiB Debian guest as qcow2
# reads only what it needs. Prints the wall seconds of `check` (which
# includes format check and guest inspection), the bytes the inspector
# read, and their share of the virtual size and of the file.
#
# Usage: benches/guest-inspect.sh [WORKDIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$root/target/bench}"
runs="${RUNS:-3}"
mkdir -p "$work"
cargo build --release -q -p ecs-preflight --manifest-path "$root/Cargo.toml"
bin="$root/target/release/ecs-preflight"
bash "$root/fixtures/guest/build-debian.sh" "$work/guest-fixtures" >&2
img="$work/debian-bios.qcow2"
[ -f "$img" ] || qemu-img convert -f raw -O qcow2 "$work/guest-fixtures/debian-bios.raw" "$img"
sync
best=""
for ((r = 0; r < runs; r++)); do
  t0=$(date +%s.%N)
  "$bin" check "$img" --output json > "$work/guest-report.json" || true
  t1=$(date +%s.%N)
  best=$(python3 -c "a='$best'; b=$t1-$t0; print(b if a=='' else min(float(a), b))")
done
python3 - "$work/guest-report.json" "$img" "$best" <<'PY'
import json, os, sys
report = json.load(open(sys.argv[1]))
size = os.path.getsize(sys.argv[2])
virtual = report["virtual_size"]
read = report["guest"]["bytes_read"]
facts = report["guest"]["facts"]
print(f"image: {sys.argv[2]}  virtual {virtual} B  file {size} B")
print(f"  check (format + guest) best of runs: {float(sys.argv[3]):.3f} s (target < 2 s)")
print(f"  guest bytes read: {read} B = {100*read/virtual:.2f} % of virtual, {100*read/size:.2f} % of the file (target < 5 %)")
print(f"  found: platform {facts.get('platform')}, arch {facts.get('architecture')}, boot {facts.get('boot_mode')}")
PY
