#!/usr/bin/env bash
# Executions per CPU-second of each fuzz target, the figure a shared machine's load does not
# change (wall exec/s falls with every other job on the cores): a fixed run from the
# committed corpus, `-runs=N -seed=1 -max_len=262144` (and run.sh's other flags), timed by /usr/bin/time; the rate is
# libFuzzer's number_of_executed_units (the corpus read plus N) over user + system seconds.
#
# Usage: fuzz/cpu-rate.sh [RUNS]   (default 3000; targets already built by run.sh or
#                                   `cargo fuzz build -O`)
# Environment: FUZZ_TARGETS="a b" only these (default: every built target);
#   FUZZ_FLAGS="..." more libFuzzer flags (`-len_control=0`: mutations may grow to 256 KiB
#   from the first run, where by default libFuzzer starts small and raises the limit slowly);
#   FUZZ_PAD=262144 every corpus input padded with zeros to at least this many bytes (the
#   cost of whole 256 KiB inputs: the copy, the chunk cache, the readers on a larger disk).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runs="${1:-3000}"
bin_dir="$here/target/x86_64-unknown-linux-gnu/release"
if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in "$here"/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%-20s | %10s | %8s | %8s | %12s\n' target executions user_s sys_s exec/CPU-s
for t in "${targets[@]}"; do
  bin="$bin_dir/$t"
  [ -x "$bin" ] || { echo "$t: not built ($bin)" >&2; continue; }
  # A copy: libFuzzer adds what it finds to the first corpus directory.
  rm -rf "$work/in" && mkdir -p "$work/in"
  [ -f "$here/corpus/$t.tar.xz" ] && tar -C "$work/in" -xJf "$here/corpus/$t.tar.xz"
  [ -z "${FUZZ_PAD:-}" ] || find "$work/in" -type f -exec truncate -s ">$FUZZ_PAD" {} +
  /usr/bin/time -f '%U %S' -o "$work/time" "$bin" "$work/in" -runs="$runs" -seed=1 \
    -max_len=262144 -rss_limit_mb=2048 -reload=0 -timeout=10 -print_final_stats=1 \
    ${FUZZ_FLAGS:-} >"$work/log" 2>&1 || { echo "$t: failed, see below" >&2; tail -20 "$work/log" >&2; }
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)"
  # The last line: time writes "Command exited with non-zero status" above it on a failure.
  read -r user sys < <(tail -1 "$work/time")
  rate="$(awk -v e="${execs:-0}" -v u="$user" -v s="$sys" \
    'BEGIN { c = u + s; if (c > 0) printf "%.0f", e / c; else print "?" }')"
  printf '%-20s | %10s | %8s | %8s | %12s\n' "$t" "${execs:-?}" "$user" "$sys" "$rate"
done
