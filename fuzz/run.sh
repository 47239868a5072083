#!/usr/bin/env bash
# A fuzzing campaign anyone can rerun: builds every target, seeds each from make-seeds.sh,
# the committed corpus and any extra seed directories, runs the targets one or two at a
# time, prints a table, keeps crash inputs and folds new coverage back into the corpus.
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [EXTRA_SEED_DIR...]
#   SECONDS_PER_TARGET  default 30
#   EXTRA_SEED_DIR      files given to every target, or, when it has a subdirectory named
#                       after a target, only that subdirectory's files to that target
# Environment:
#   FUZZ_JOBS=1|2       targets run at once (default 1: the machine is shared)
#   FUZZ_TARGETS="a b"  only these targets (default: all of `cargo fuzz list`)
#   FUZZ_MAX_LEN        longest input in bytes (default 262144)
#   FUZZ_TOOLCHAIN=stable|nightly  compiler for the targets (default: nightly if installed);
#                       a switch rebuilds every dependency (minutes), so keep to one
#
# Writes: fuzz/corpus/<target>.tar.xz (the corpus minimised with libFuzzer's -merge=1;
# commit it so the next run starts there: disk images are mostly zeros, a few MiB of inputs
# pack into tens of KiB), fuzz/artifacts/<target>/ (crash-*, leak-*, timeout-*, oom-*
# inputs), fuzz/logs/<target>.log. Exit status 1 if any target found a crash.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs="${1:-30}"
shift || true
extra=("$@")
jobs="${FUZZ_JOBS:-1}"
max_len="${FUZZ_MAX_LEN:-262144}"

command -v cargo-fuzz >/dev/null || {
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
}
# cargo-fuzz needs nightly's -Z flags: an installed nightly, else the stable compiler with
# RUSTC_BOOTSTRAP=1 (same flags, no download).
toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
  if rustup run nightly rustc --version >/dev/null 2>&1; then toolchain=nightly; else toolchain=stable; fi
fi
if [ "$toolchain" = nightly ]; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

read -r -a targets <<<"${FUZZ_TARGETS:-$("${fuzz[@]}" list | tr '\n' ' ')}"
echo "building ${#targets[@]} targets (${fuzz[*]} build -O)" >&2
if [ -n "${FUZZ_TARGETS:-}" ]; then
  # Only the chosen ones: linking all seventeen takes minutes on a busy machine.
  for t in "${targets[@]}"; do "${fuzz[@]}" build -O "$t" >&2; done
else
  "${fuzz[@]}" build -O >&2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$here/make-seeds.sh" "$work/seeds" >/dev/null
mkdir -p logs artifacts
touch "$work/stamp"

# Seeds for one target: make-seeds output, the committed corpus, the extra directories.
seed() {
  local t="$1" d
  mkdir -p "$work/in/$t" "artifacts/$t"
  [ -d "$work/seeds/$t" ] && find "$work/seeds/$t" -maxdepth 1 -type f -exec cp -t "$work/in/$t" {} +
  [ -f "corpus/$t.tar.xz" ] && tar -C "$work/in/$t" -xJf "corpus/$t.tar.xz"
  for d in "${extra[@]}"; do
    if [ -d "$d/$t" ]; then d="$d/$t"; fi
    find "$d" -maxdepth 1 -type f -exec cp -t "$work/in/$t" {} +
  done
}

run_one() {
  local t="$1" bin="$here/target/x86_64-unknown-linux-gnu/release/$1"
  seed "$t"
  # -rss_limit_mb: a reader that allocates in proportion to a field shows up as an OOM.
  # -reload=0: no other process writes this corpus, and libFuzzer's default rereads (and
  # hashes) the whole corpus directory every second: with 256 KiB inputs, most of its time.
  "$bin" "$work/in/$t" -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=2048 \
    -reload=0 -timeout=10 -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
    >"logs/$t.log" 2>&1 || true
  # Fold what this run found into the committed corpus, minimised.
  mkdir -p "$work/merged/$t"
  "$bin" -merge=1 -max_len="$max_len" "$work/merged/$t" "$work/in/$t" >>"logs/$t.log" 2>&1 || true
  if [ -n "$(ls -A "$work/merged/$t")" ]; then
    # Reproducible archive: the same corpus gives the same bytes.
    (cd "$work/merged/$t" && find . -type f -printf '%P\n' | LC_ALL=C sort |
      tar --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - -T - | xz -6 -T1) \
      >"corpus/$t.tar.xz"
  fi
}

for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  echo "fuzzing $t for ${secs}s" >&2
  run_one "$t" &
done
wait

final() { sed -n "s/^stat::$2: *//p" "logs/$1.log" | tail -1; }
crashed=0
printf '%-12s | %12s | %8s | %8s | %7s | %s\n' target executions exec/s coverage crashes \
  'corpus (files, KiB, packed KiB)' 
for t in "${targets[@]}"; do
  cov="$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1 | cut -d' ' -f2)"
  n="$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) -newer "$work/stamp" | wc -l)"
  [ "$n" -eq 0 ] || crashed=1
  files="$(find "$work/merged/$t" -type f | wc -l)"
  size="$(du -sk --apparent-size "$work/merged/$t" | cut -f1)"
  packed="$(($(stat -c %s "corpus/$t.tar.xz" 2>/dev/null || echo 0) / 1024))"
  printf '%-12s | %12s | %8s | %8s | %7s | %s, %s, %s\n' "$t" \
    "$(final "$t" number_of_executed_units)" "$(final "$t" average_exec_per_sec)" "${cov:-?}" \
    "$n" "$files" "$size" "$packed"
done
[ "$crashed" -eq 0 ] || echo "crash inputs: fuzz/artifacts/<target>/ (logs in fuzz/logs/)" >&2
exit "$crashed"
