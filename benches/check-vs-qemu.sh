#!/usr/bin/env bash
# Benchmark (issue 2): `ecs-preflight check` against `qemu-img check` +
# `qemu-img info` on the same qcow2, in one run. Prints wall seconds of
# each, the ratio (target: ours <= 0.5x) and peak RSS (target: independent
# of the virtual size: we also run a 1 TiB-virtual image holding the same
# data).
#
# Usage: benches/check-vs-qemu.sh [WORKDIR] [DATA_GIB]
#   WORKDIR   where the images go (default: target/bench); needs DATA_GIB*2 of space
#   DATA_GIB  GiB of data written into the 100 GiB-virtual image (default 10)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$root/target/bench}"
data_gib="${2:-10}"
runs="${RUNS:-3}"
mkdir -p "$work"
cargo build --release -q -p ecs-preflight --manifest-path "$root/Cargo.toml"
bin="$root/target/release/ecs-preflight"

make_image() { # path virtual_gib
  local path="$1" virt="$2"
  [ -f "$path" ] && return
  qemu-img create -q -f qcow2 "$path" "${virt}G"
  # DATA_GIB of data in 64 MiB runs spread evenly over the first 100 GiB:
  # like an installed system, mostly contiguous, many L2 tables touched.
  local chunks=$((data_gib * 16)) stride=$((100 * 1024 / (data_gib * 16))) cmds=()
  for ((i = 0; i < chunks; i++)); do
    cmds+=(-c "write -P $((i % 255 + 1)) $((i * stride))M 64M")
  done
  qemu-io -f qcow2 "${cmds[@]}" "$path" >/dev/null
}

img100="$work/bench-100g.qcow2"
img1t="$work/bench-1t.qcow2"
echo "making images in $work (${data_gib} GiB of data each)..." >&2
make_image "$img100" 100
make_image "$img1t" 1024
sync

best() { # command... ; prints the best wall time of $runs runs, in seconds
  local best_t=""
  for ((r = 0; r < runs; r++)); do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    best_t=$(python3 -c "a='$best_t'; b=$t1-$t0; print(b if a=='' else min(float(a), b))")
  done
  printf '%.3f' "$best_t"
}

rss_kib() { # command... ; peak RSS in KiB (check exits 1 on findings: not a failure here)
  { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null || true; } | tail -1
}

for img in "$img100" "$img1t"; do
  virt=$(qemu-img info --output=json "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
  size=$(stat -c %s "$img")
  ours=$(best "$bin" check "$img" --output json)
  qcheck=$(best qemu-img check "$img")
  qinfo=$(best qemu-img info "$img")
  theirs=$(python3 -c "print(f'{$qcheck + $qinfo:.3f}')")
  ratio=$(python3 -c "print(f'{$ours / ($qcheck + $qinfo):.2f}')")
  ours_rss=$(rss_kib "$bin" check "$img" --output json)
  qemu_rss=$(rss_kib qemu-img check "$img")
  echo "image: $(basename "$img")  virtual ${virt} B  file ${size} B"
  echo "  ecs-preflight check:                ${ours} s   peak RSS ${ours_rss} KiB"
  echo "  qemu-img check + qemu-img info:     ${theirs} s (${qcheck} + ${qinfo})   qemu-img check peak RSS ${qemu_rss} KiB"
  echo "  ratio ours/qemu:                    ${ratio} (target <= 0.5)"
done
