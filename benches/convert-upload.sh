#!/usr/bin/env bash
# Benchmark (issue 8): a 20 GiB RAW holding 1 GiB of data, sent to the loopback emulator
# three ways, in one run:
#   convert   ecs-preflight upload --convert qcow2 (map pass + qcow2 streamed into the parts)
#   as-is     ecs-preflight upload --convert none (every byte of the RAW)
#   qemu-img  qemu-img convert -O qcow2 to a temporary file, then ecs-preflight upload of it
#   vmdk      the same disk as a dynamic (monolithicSparse) VMDK, --convert qcow2: the map
#             pass follows the grain tables, so it reads only the allocated grains
# For each: bytes sent (from the emulator's counters), wall seconds and peak RSS; then the
# ratios. Target: convert sends <= 1.05 GiB.
#
# Usage: benches/convert-upload.sh [WORKDIR] [VIRTUAL_GIB] [DATA_MIB]
#   WORKDIR      scratch space (default: target/bench-convert); needs VIRTUAL_GIB + 2*DATA of space
#   VIRTUAL_GIB  size of the RAW (default 20)
#   DATA_MIB     random data written into it, in 64 MiB runs spread over the disk (default 1024)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$root/target/bench-convert}"
virtual_gib="${2:-20}"
data_mib="${3:-1024}"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"
rm -rf "$work/emu" "$work/cache" "$work/via-qemu.qcow2"
echo "building (release)..." >&2
cargo build --release -q -p ecs-preflight --manifest-path "$root/Cargo.toml"
bin="$target/release/ecs-preflight"

src="$work/src-${virtual_gib}g-${data_mib}m.raw"
if [ ! -f "$src" ]; then
  truncate -s "${virtual_gib}G" "$src"
  runs=$((data_mib / 64))
  stride=$((virtual_gib * 1024 / runs))
  for ((i = 0; i < runs; i++)); do
    head -c $((64 << 20)) /dev/urandom | dd of="$src" bs=1M seek=$((i * stride)) conv=notrunc status=none
  done
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
endpoint="http://127.0.0.1:$port"
"$bin" emulator --listen "127.0.0.1:$port" --data "$work/emu" --bucket bench@cn-hangzhou >"$work/emulator.log" 2>&1 &
emu_pid=$!
trap 'kill $emu_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "$endpoint/_emulator/health" >/dev/null 2>&1 && break
  sleep 0.1
done

export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tPreflightEmulator
export ALIBABA_CLOUD_ACCESS_KEY_SECRET=PreflightEmulatorTestSecret0000000000
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
export XDG_CACHE_HOME="$work/cache"

now() { date +%s.%N; }
# Request body bytes the emulator's OSS received since the last reset.
received() {
  curl -fs "$endpoint/_emulator/counters" | python3 -c 'import json, sys; print(json.load(sys.stdin)["bytes_received"])'
}
reset() { curl -fs -X POST "$endpoint/_emulator/counters/reset" >/dev/null; }
upload() { # name file extra...
  local name="$1" file="$2"
  shift 2
  /usr/bin/time -f '%M' -o "$work/rss-$name.txt" "$bin" upload "$file" --region cn-hangzhou \
    --bucket bench --endpoint "$endpoint" --object "$name" --parallel 4 --force -q "$@"
}

declare -A secs bytes rss
reset
t0=$(now); upload convert.qcow2 "$src" --convert qcow2; t1=$(now)
secs[convert]=$(python3 -c "print(f'{$t1 - $t0:.1f}')"); bytes[convert]=$(received); rss[convert]=$(cat "$work/rss-convert.qcow2.txt")
reset
t0=$(now); upload as-is.raw "$src" --convert none; t1=$(now)
secs[as-is]=$(python3 -c "print(f'{$t1 - $t0:.1f}')"); bytes[as-is]=$(received); rss[as-is]=$(cat "$work/rss-as-is.raw.txt")
reset
t0=$(now)
qemu-img convert -f raw -O qcow2 "$src" "$work/via-qemu.qcow2"
upload via-qemu.qcow2 "$work/via-qemu.qcow2"
t1=$(now)
secs[qemu-img]=$(python3 -c "print(f'{$t1 - $t0:.1f}')"); bytes[qemu-img]=$(received); rss[qemu-img]=$(cat "$work/rss-via-qemu.qcow2.txt")
rm -f "$work/via-qemu.qcow2"
vmdk="${src%.raw}.vmdk"
[ -f "$vmdk" ] || qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$src" "$vmdk"
reset
t0=$(now); upload vmdk.qcow2 "$vmdk" --convert qcow2; t1=$(now)
secs[vmdk]=$(python3 -c "print(f'{$t1 - $t0:.1f}')"); bytes[vmdk]=$(received); rss[vmdk]=$(cat "$work/rss-vmdk.qcow2.txt")

echo "== $virtual_gib GiB RAW holding $data_mib MiB of data, loopback emulator, 4 parallel parts =="
printf '%-10s %14s %10s %8s %10s\n' way "bytes sent" GiB seconds "RSS MiB"
for w in convert as-is qemu-img vmdk; do
  printf '%-10s %14d %10.3f %8s %10d\n' "$w" "${bytes[$w]}" \
    "$(python3 -c "print(${bytes[$w]} / 2**30)")" "${secs[$w]}" "$((${rss[$w]} / 1024))"
done
python3 - "${bytes[convert]}" "${bytes[as-is]}" "${bytes[qemu-img]}" "${secs[convert]}" "${secs[as-is]}" "${secs[qemu-img]}" <<'PY'
import sys
bc, ba, bq, sc, sa, sq = map(float, sys.argv[1:])
print(f"bytes: convert / as-is = {bc / ba:.3f}, convert / qemu-img = {bc / bq:.3f}")
print(f"time:  as-is / convert = {sa / sc:.1f}x, qemu-img / convert = {sq / sc:.1f}x")
print(f"target: convert sends <= 1.05 GiB: {'met' if bc <= 1.05 * 2**30 else 'NOT met'} ({bc / 2**30:.3f} GiB)")
PY
