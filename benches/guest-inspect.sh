#!/usr/bin/env bash
# Benchmark (issue 7): guest inspection of the 3 GiB Debian guest as qcow2
# reads only what it needs. Prints the wall seconds of `check` (which
# includes format check and guest inspection), the bytes the inspector
# read, and their share of the virtual size and of the file.
#
# Usage: benches/guest-inspect.sh [WORKDIR]
#   FIXTURES=DIR  where the Debian guest is (or is built); default WORKDIR/guest-fixtures
#   PROFILE=dev   time a debug build instead of release (an upper bound, for machines
#                 where a release build is too slow to make)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$root/target/bench}"
runs="${RUNS:-3}"
profile="${PROFILE:-release}"
fixtures="${FIXTURES:-$work/guest-fixtures}"
mkdir -p "$work"
cargo build --profile "$profile" -q -p ecs-preflight --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/$([ "$profile" = dev ] && echo debug || echo "$profile")/ecs-preflight"
bash "$root/fixtures/guest/build-debian.sh" "$fixtures" >&2
img="$fixtures/debian-bios.qcow2"
[ -f "$img" ] || img="$work/debian-bios.qcow2"
[ -f "$img" ] || qemu-img convert -f raw -O qcow2 "$fixtures/debian-bios.raw" "$img"
sync
best=""
for ((r = 0; r < runs; r++)); do
  t0=$(date +%s.%N)
  "$bin" check "$img" --output json > "$work/guest-report.json" || true
  t1=$(date +%s.%N)
  best=$(python3 -c "a='$best'; b=$t1-$t0; print(b if a=='' else min(float(a), b))")
done
python3 - "$work/guest-report.json" "$img" "$best" "$profile" <<'PY'
import json, os, sys
report = json.load(open(sys.argv[1]))
size = os.path.getsize(sys.argv[2])
virtual = report["virtual_size"]
read = report["guest"]["bytes_read"]
facts = report["guest"]["facts"]
print(f"image: {sys.argv[2]}  virtual {virtual} B  file {size} B")
print(f"  check (format + guest, {sys.argv[4]} build) best of runs: {float(sys.argv[3]):.3f} s (target < 1 s)")
print(f"  guest bytes read: {read} B = {100*read/virtual:.2f} % of virtual, {100*read/size:.2f} % of the file (target < 5 %)")
print(f"  found: platform {facts.get('platform')}, arch {facts.get('architecture')}, boot {facts.get('boot_mode')}")
PY
