#!/usr/bin/env bash
# Benchmark (issues 5 and 15): `ecs-preflight upload` against the official oss2 SDK's
# resumable_upload, same emulator on loopback, same part size and thread count, in one
# run: client CPU per GiB of each, MiB/s of each, and both ratios (targets: our CPU per GiB
# <= 0.3x oss2's, our throughput >= 2x). Ours runs with its defaults: CRC-64 per part and
# for the whole object, no Content-MD5 (oss2 checks CRC-64 too, by default). Optionally the
# hashing throughput of CRC-64, MD5 and SHA-256 on one core, and the peak RSS of a large
# upload (target: about parallel x part size, whatever the image size).
#
# Usage: benches/upload-vs-oss2.sh [WORKDIR] [SIZE_MIB]
#   WORKDIR   scratch space (default: target/bench-upload); needs about SIZE_MIB*3 MiB
#   SIZE_MIB  size of the throughput test file (default 512: short on a shared machine)
# Env: PART_MIB (default 8), THREADS (default 4), PREFLIGHT_PYTHON (default .venv/bin/python),
#      HASHBENCH (default 0; 1 runs the hashing benchmark),
#      OURS_FLAGS (extra flags for our upload, e.g. --content-md5, which oss2 does not send),
#      RSS_GIB (default 0: skipped; N runs an N GiB upload and reports its peak RSS),
#      ECS_PREFLIGHT_BIN (default: build the release binary; a path runs that build, client
#      and emulator both, to compare two builds on the same machine state).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$root/target/bench-upload}"
size_mib="${2:-512}"
part_mib="${PART_MIB:-8}"
threads="${THREADS:-4}"
rss_gib="${RSS_GIB:-0}"
hashbench="${HASHBENCH:-0}"
read -r -a ours_flags <<<"${OURS_FLAGS:-}"
py="${PREFLIGHT_PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || { echo "no python with oss2 at $py: run fixtures/install-deps.sh" >&2; exit 2; }
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"
rm -rf "$work/emu" "$work/cache" "$work/oss2-cp"
bin="${ECS_PREFLIGHT_BIN:-}"
if [ -z "$bin" ]; then
  echo "building (release)..." >&2
  cargo build --release -q -p ecs-preflight --manifest-path "$root/Cargo.toml"
  bin="$target/release/ecs-preflight"
fi
[ -x "$bin" ] || { echo "ECS_PREFLIGHT_BIN=$bin is not an executable" >&2; exit 2; }
[ "$hashbench" = 0 ] || cargo build --release -q -p preflight-oss --example hashbench --manifest-path "$root/Cargo.toml"

port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
endpoint="http://127.0.0.1:$port"
"$bin" emulator --listen "127.0.0.1:$port" --data "$work/emu" --bucket bench@cn-hangzhou >"$work/emulator.log" 2>&1 &
emu_pid=$!
# Wait for it to exit, so that the next run's clean-up does not race its last writes.
trap 'kill $emu_pid 2>/dev/null || true; wait $emu_pid 2>/dev/null || true' EXIT
"$py" - "$endpoint" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(sys.argv[1] + "/_emulator/health", timeout=1); sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("emulator did not start")
PY

export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tPreflightEmulator
export ALIBABA_CLOUD_ACCESS_KEY_SECRET=PreflightEmulatorTestSecret0000000000
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
export XDG_CACHE_HOME="$work/cache"

src="$work/src-${size_mib}m.raw"
[ -f "$src" ] || head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$src"
now() { date +%s.%N; }
# Emulator CPU seconds so far (utime + stime from /proc), to show how much of the wall time
# the server side (the same for both clients) takes.
emu_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$emu_pid/stat"; }

echo "upload of $size_mib MiB, ${part_mib} MiB parts x $threads threads, loopback emulator${OURS_FLAGS:+, ours with $OURS_FLAGS}" >&2
e0=$(emu_cpu)
t0=$(now)
/usr/bin/time -f '%U %S' -o "$work/cpu-ours.txt" \
  "$bin" upload "$src" --region cn-hangzhou --bucket bench --endpoint "$endpoint" --object ours.raw \
  --part-size "${part_mib}MiB" --parallel "$threads" --multipart-threshold 100MiB --convert none -q \
  ${ours_flags[@]+"${ours_flags[@]}"}
t1=$(now)
ours=$("$py" -c "print(f'{$size_mib / ($t1 - $t0):.1f}')")
e1=$(emu_cpu)

# oss2 times itself and counts its own CPU (interpreter start-up and imports excluded, in its
# favour: ours is timed and counted from its process start).
oss2_secs=$("$py" - "$endpoint" "$src" "$part_mib" "$threads" "$work/oss2-cp" "$work/cpu-oss2.txt" <<'PY'
import os, resource, sys, time, oss2
endpoint, src, part_mib, threads, cp, cpu_out = sys.argv[1:7]
# V4, as ours signs (the emulator refuses V1 by default, as new accounts do).
b = oss2.Bucket(oss2.AuthV4(os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]), endpoint, "bench", region="cn-hangzhou")
r0 = resource.getrusage(resource.RUSAGE_SELF)
t = time.time()
oss2.resumable_upload(b, "oss2.raw", src, store=oss2.ResumableStore(root=cp),
                      multipart_threshold=100 * 1024 * 1024, part_size=int(part_mib) * 1024 * 1024,
                      num_threads=int(threads))
secs = time.time() - t
r1 = resource.getrusage(resource.RUSAGE_SELF)
with open(cpu_out, "w") as f:
    print(r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, file=f)
print(secs)
PY
)
e2=$(emu_cpu)
theirs=$("$py" -c "print(f'{$size_mib / $oss2_secs:.1f}')")
ratio=$("$py" -c "print(f'{$ours / $theirs:.2f}')")
# Client CPU (user + sys seconds) per GiB: what the client itself costs, independent of how
# busy the machine and the emulator (which does the same work for both) are.
cpu() { awk -v m="$size_mib" '{ printf "%.2f", ($1 + $2) * 1024 / m }' "$1"; }
cpu_ours=$(cpu "$work/cpu-ours.txt")
cpu_oss2=$(cpu "$work/cpu-oss2.txt")
cpu_ratio=$("$py" -c "print(f'{$cpu_ours / $cpu_oss2:.2f}')")

echo
echo "== upload ($size_mib MiB, ${part_mib} MiB parts, $threads threads, loopback emulator${OURS_FLAGS:+; ours with $OURS_FLAGS}) =="
printf '%-28s %8s s per GiB\n' "client CPU, ecs-preflight" "$cpu_ours" "client CPU, oss2" "$cpu_oss2"
echo "client CPU ratio: ${cpu_ratio}x oss2's (target <= 0.3x)"
printf '%-28s %8s MiB/s\n' "throughput, ecs-preflight" "$ours" "throughput, oss2" "$theirs"
echo "throughput ratio: ${ratio}x oss2's (target >= 2x)"
per_gib() { "$py" -c "print(f'{($2 - $1) * 1024 / $size_mib:.2f}')"; }
emu_ours=$(per_gib "$e0" "$e1")
emu_oss2=$(per_gib "$e1" "$e2")
printf '%-28s %8s s per GiB\n' "emulator CPU, ours" "$emu_ours" "emulator CPU, oss2" "$emu_oss2"
# On a machine whose cores are all busy, each upload's speed follows the CPU it needs per GiB,
# client and emulator together: the emulator's share, the same for both, caps the ratio.
echo "client + emulator CPU per GiB, oss2's / ours: $("$py" -c "print(f'{($cpu_oss2 + $emu_oss2) / ($cpu_ours + $emu_ours):.2f}')")x (on a machine short of CPU, throughput follows it)"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

if [ "$hashbench" != 0 ]; then
  echo
  echo "== hashing, one core =="
  "$target/release/examples/hashbench" 2048
fi

if [ "$rss_gib" != 0 ]; then
  big="$work/rss-${rss_gib}g.raw"
  if [ ! -f "$big" ]; then
    # Random data, so every part really is read, hashed and sent.
    head -c "$((rss_gib * 1024 * 1024 * 1024))" /dev/urandom >"$big"
  fi
  echo
  echo "== peak RSS, $rss_gib GiB upload (default 32 MiB parts x $threads) =="
  /usr/bin/time -f '%M' -o "$work/rss.txt" "$bin" upload "$big" --region cn-hangzhou --bucket bench \
    --endpoint "$endpoint" --object rss.raw --parallel "$threads" --convert none -q
  kib=$(cat "$work/rss.txt")
  echo "peak RSS: $((kib / 1024)) MiB (bound: $threads x 32 MiB parts + constant)"
fi
