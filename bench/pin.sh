#!/usr/bin/env bash
# Benchmark: cold `stablebuild pin` against cold `skopeo copy --all` into an OCI directory,
# both pulling from the same local distribution registry in the same run.
#
#   bash bench/pin.sh [--quick] [--runs N] [--big-size BYTES] [--jobs N] [--warmup N]
#
# See bench/README.md for what is measured and what the targets mean. The script is a
# measurement: it exits 0 when a target is missed, and non-zero only when a command fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
    cat <<'EOF'
usage: bash bench/pin.sh [options]

  --quick            fast check: big image of 128 MiB, 3 runs
  --runs N           timed runs per image and tool (default 5; env BENCH_RUNS)
  --big-size BYTES   size of the random file in library/big:1 (default 1073741824;
                     env BENCH_BIG_SIZE)
  --warmup N         untimed runs per image and tool before the timed ones (default 1;
                     env BENCH_WARMUP)
  --jobs N           pass --jobs N to stablebuild pin (default: its own default)
  -h, --help         this text

Honours CARGO_TARGET_DIR (default target/) and TMPDIR (default /tmp).
EOF
}

# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------
runs=${BENCH_RUNS:-5}
big_size=${BENCH_BIG_SIZE:-1073741824}
warmup=${BENCH_WARMUP:-1}
jobs=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) runs=3; big_size=$((128 << 20)); shift ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --runs=*) runs=${1#*=}; shift ;;
        --big-size) big_size=${2:?--big-size needs a value}; shift 2 ;;
        --big-size=*) big_size=${1#*=}; shift ;;
        --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
        --warmup=*) warmup=${1#*=}; shift ;;
        --jobs) jobs=${2:?--jobs needs a value}; shift 2 ;;
        --jobs=*) jobs=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/pin.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
check_integers "runs:$runs:1" "big-size:$big_size:1" "warmup:$warmup:0" "jobs:${jobs:-1}:1"

enter_root
# Flags are passed explicitly; make sure nothing in the caller's environment changes them.
unset STABLEBUILD_STORE STABLEBUILD_UPSTREAM

# ------------------------------------------------------------------------------------------
# Packages, build, work dir, registry, fixtures (see bench/lib.sh)
# ------------------------------------------------------------------------------------------
need_packages docker-registry skopeo time curl
build_binaries

# Both tools write under one directory (runs_dir), so they pay the same filesystem's costs.
make_work_dir
start_registry

load_fixtures
declare -A pushed_digest pushed_size
while read -r name digest size; do
    pushed_digest[$name]=$digest
    pushed_size[$name]=$size
done <"$work/fixtures.txt"
for image in library/many:1 library/multi:1 library/big:1; do
    if [ -z "${pushed_digest[$image]:-}" ]; then
        echo "bench/pin.sh: load_fixtures did not report $image" >&2
        cat "$work/fixtures.txt" >&2
        exit 1
    fi
done
sync # the pushes leave dirty data; nothing measured should pay for writing it back

# ------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------
# run_one TOOL IMAGE RESULT_FILE: one cold run into a fresh empty directory. Appends
# "seconds max_rss_kib" to RESULT_FILE (when given), then removes the directory and syncs
# (untimed) so that the next run starts with no dirty data of this one.
run_one() {
    local tool=$1 image=$2 result=${3:-} dir t0 t1 rss
    dir=$(mktemp -d "$runs_dir/$tool.XXXXXX")
    local cmd
    case "$tool" in
        stablebuild)
            cmd=("$sb_bin" --json --store "$dir" --upstream "docker.io=http://$registry" pin)
            if [ -n "$jobs" ]; then cmd+=(--jobs "$jobs"); fi
            cmd+=("$image")
            ;;
        skopeo)
            cmd=(skopeo --policy "$policy" copy --all --src-tls-verify=false
                "docker://$registry/$image" "oci:$dir:${image##*:}")
            ;;
    esac
    t0=$(now_us)
    if ! /usr/bin/time -f %M -o "$work/rss" "${cmd[@]}" >"$work/out" 2>"$work/err"; then
        t1=$(now_us)
        echo "bench/pin.sh: $tool failed on $image:" >&2
        printf '  %q' "${cmd[@]}" >&2
        echo >&2
        cat "$work/out" "$work/err" >&2
        exit 1
    fi
    t1=$(now_us)
    rss=$(tail -n 1 "$work/rss")
    # Check that the run did what it should, outside the timed part.
    case "$tool" in
        stablebuild)
            grep -q "${pushed_digest[$image]}" "$work/out" || {
                echo "bench/pin.sh: stablebuild did not report ${pushed_digest[$image]}" >&2
                cat "$work/out" "$work/err" >&2
                exit 1
            } ;;
        skopeo)
            [ -s "$dir/index.json" ] || {
                echo "bench/pin.sh: skopeo left no $dir/index.json" >&2
                cat "$work/out" "$work/err" >&2
                exit 1
            } ;;
    esac
    if [ -n "$result" ]; then
        awk -v a="$t0" -v b="$t1" -v m="$rss" 'BEGIN { printf "%.6f %d\n", (b - a) / 1e6, m }' \
            >>"$result"
    fi
    rm -rf -- "$dir"
    sync
}

images=(library/many:1 library/multi:1 library/big:1)
note_load_start
declare -A target=([library/many:1]=0.7 [library/multi:1]=0.7 [library/big:1]=0.5)
rss_limit_mib=64

for image in "${images[@]}"; do
    log "$image: $warmup warmup + $runs timed runs per tool" \
        "(${pushed_size[$image]} bytes)"
    for ((i = 0; i < warmup; i++)); do
        run_one stablebuild "$image"
        run_one skopeo "$image"
    done
    : >"$work/${image//[\/:]/_}.stablebuild"
    : >"$work/${image//[\/:]/_}.skopeo"
    for ((i = 0; i < runs; i++)); do
        # Alternate which tool goes first (ABBA...), so neither always follows the other.
        if ((i % 2 == 0)); then order=(stablebuild skopeo); else order=(skopeo stablebuild); fi
        for tool in "${order[@]}"; do
            run_one "$tool" "$image" "$work/${image//[\/:]/_}.$tool"
        done
    done
done

# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
print_machine "store and OCI dir both here"
echo "skopeo:          $(skopeo --version)"
echo "registry:        $(docker-registry --version)"
echo "rustc:           $(rustc --version 2>/dev/null || echo unknown)"
echo "settings:        runs=$runs warmup=$warmup big-size=$big_size" \
    "stablebuild jobs=${jobs:-default}"
echo

echo "== per-run times (s) and max RSS (MiB)"
for image in "${images[@]}"; do
    for tool in stablebuild skopeo; do
        printf '%-16s %-12s' "$image" "$tool"
        awk '{ printf " %.3f/%.1f", $1, $2 / 1024 }' "$work/${image//[\/:]/_}.$tool"
        echo
    done
done
echo

echo "== medians of $runs cold runs (ratio = stablebuild / skopeo; lower is better)"
header='%-16s %10s %10s %6s %7s %5s %12s %12s %10s %5s\n'
printf "$header" image "sb s" "skopeo s" ratio target time "sb RSS MiB" "sk RSS MiB" "RSS target" RSS
met=0
total=0
for image in "${images[@]}"; do
    base=$work/${image//[\/:]/_}
    sb_s=$(median 1 "$base.stablebuild")
    sk_s=$(median 1 "$base.skopeo")
    sb_rss=$(median 2 "$base.stablebuild")
    sk_rss=$(median 2 "$base.skopeo")
    ratio=$(awk -v a="$sb_s" -v b="$sk_s" 'BEGIN { printf "%.2f", a / b }')
    verdict=$(awk -v a="$sb_s" -v b="$sk_s" -v t="${target[$image]}" \
        'BEGIN { print (a <= t * b) ? "PASS" : "MISS" }')
    total=$((total + 1))
    if [ "$verdict" = PASS ]; then met=$((met + 1)); fi
    rss_target=-
    rss_verdict=-
    if [ "$image" = library/big:1 ]; then
        rss_target="<$rss_limit_mib"
        # Every run must stay under the limit, not just the median.
        rss_verdict=$(awk -v l=$((rss_limit_mib * 1024)) \
            '$2 >= l { bad = 1 } END { print bad ? "MISS" : "PASS" }' "$base.stablebuild")
        total=$((total + 1))
        if [ "$rss_verdict" = PASS ]; then met=$((met + 1)); fi
    fi
    printf '%-16s %10.3f %10.3f %6s %7s %5s %12.1f %12.1f %10s %5s\n' \
        "$image" "$sb_s" "$sk_s" "$ratio" "<=${target[$image]}" "$verdict" \
        "$(awk -v k="$sb_rss" 'BEGIN { print k / 1024 }')" \
        "$(awk -v k="$sk_rss" 'BEGIN { print k / 1024 }')" "$rss_target" "$rss_verdict"
done
echo
echo "targets met: $met of $total; big image: $big_size bytes;" \
    "total time ${SECONDS}s (build ${build_seconds}s)"
