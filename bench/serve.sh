#!/usr/bin/env bash
# Benchmark: `stablebuild serve` (the read-only pull-through mirror) against the references
# the issue names, all in the same run:
#   1. cached blob GET throughput              vs nginx (sendfile) serving the same file
#   2. cached manifest GETs by tag (wrk)       vs the distribution registry
#   3. cold pull of a 256 MiB image (skopeo)   vs skopeo straight from the upstream registry,
#      and (for reference) through the distribution registry in proxy mode, and the mirror
#      vs direct again with skopeo alone on one CPU and the servers on the other
#   4. peak memory of the server during 20 concurrent cold pulls of that image
#
#   bash bench/serve.sh [--quick] [--runs N] [--big-size BYTES] [--wrk-duration SECS]
#                       [--pulls N] [--memory-runs N]
#
# See bench/README.md. The script is a measurement: it exits 0 when a target is missed, and
# non-zero only when a command fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
    cat <<'USAGE'
usage: bash bench/serve.sh [options]

  --quick              fast check: 3 runs, wrk 2 s, one memory run
  --runs N             timed runs per measurement and side (default 5; env BENCH_RUNS)
  --big-size BYTES     size of the random file in library/big:1 (default 268435456;
                       env BENCH_BIG_SIZE)
  --wrk-duration SECS  duration of each wrk run (default 5; env BENCH_WRK_DURATION)
  --pulls N            concurrent cold pulls for the memory measurement (default 20)
  --memory-runs N      repetitions of the concurrent-pull measurement (default 3)
  -h, --help           this text

Honours CARGO_TARGET_DIR (default target/) and TMPDIR (default /tmp).
USAGE
}

# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------
runs=${BENCH_RUNS:-5}
big_size=${BENCH_BIG_SIZE:-268435456}
wrk_duration=${BENCH_WRK_DURATION:-5}
pulls=20
memory_runs=3
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) runs=3; wrk_duration=2; memory_runs=1; shift ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --runs=*) runs=${1#*=}; shift ;;
        --big-size) big_size=${2:?--big-size needs a value}; shift 2 ;;
        --big-size=*) big_size=${1#*=}; shift ;;
        --wrk-duration) wrk_duration=${2:?--wrk-duration needs a value}; shift 2 ;;
        --wrk-duration=*) wrk_duration=${1#*=}; shift ;;
        --pulls) pulls=${2:?--pulls needs a value}; shift 2 ;;
        --pulls=*) pulls=${1#*=}; shift ;;
        --memory-runs) memory_runs=${2:?--memory-runs needs a value}; shift 2 ;;
        --memory-runs=*) memory_runs=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/serve.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
check_integers "runs:$runs:1" "big-size:$big_size:1" "wrk-duration:$wrk_duration:1" \
    "pulls:$pulls:1" "memory-runs:$memory_runs:1"

enter_root
# Flags are passed explicitly; make sure nothing in the caller's environment changes them.
unset STABLEBUILD_STORE STABLEBUILD_UPSTREAM STABLEBUILD_SERVER STABLEBUILD_ADMIN_TOKEN RUST_LOG

# ------------------------------------------------------------------------------------------
# Packages, build, work dir, registry, fixtures (see bench/lib.sh)
# ------------------------------------------------------------------------------------------
need_packages docker-registry skopeo time curl nginx wrk
build_binaries
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# The processes this script starts besides the registry; all are stopped on exit.
nginx_pid=""
sb_pid=""
proxy_pid=""
on_server_cpu=""
on_client_cpu=""
pull_pids=()
stop_own() {
    local p
    for p in "${pull_pids[@]}"; do stop_pid "$p"; done
    stop_pid "$sb_pid"
    stop_pid "$proxy_pid"
    stop_pid "$nginx_pid"
}
make_work_dir
start_registry

load_fixtures
grep -q '^library/big:1 ' "$work/fixtures.txt" && grep -q '^library/multi:1 ' "$work/fixtures.txt" ||
    { cat "$work/fixtures.txt" >&2; die "load_fixtures did not report library/big:1 and library/multi:1"; }

accept='application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.docker.distribution.manifest.v2+json'

# The big layer: the only blob in the upstream's storage of at least big_size bytes (a tar of
# the random file, so a little larger).
big_data=$(find "$work/registry" -path '*/blobs/sha256/*/data' -type f -size "+$((big_size - 1))c" | head -n 1)
[ -n "$big_data" ] || die "no blob of $big_size bytes in the registry's storage"
big_digest=sha256:$(basename "$(dirname "$big_data")")
blob_size=$(stat -c %s "$big_data")
sync # the pushes leave dirty data; nothing measured should pay for writing it back

# ------------------------------------------------------------------------------------------
# stablebuild serve and nginx
# ------------------------------------------------------------------------------------------
# start_sb STORE: starts `stablebuild serve` with a store STORE (see launch_sb in lib.sh).
# Sets sb_pid and mirror. Runs it under $on_server_cpu (empty, or a taskset command; see
# measurement 3).
start_sb() {
    # shellcheck disable=SC2086 # empty or a command and its arguments
    launch_sb $on_server_cpu "$sb_bin" --store "$1" --upstream "docker.io=http://$registry" \
        serve --listen 127.0.0.1:0
}
stop_sb() { stop_pid "$sb_pid"; sb_pid=""; }

note_load_start
measure_start=$SECONDS

# ------------------------------------------------------------------------------------------
# 1. Cached blob GET throughput
# ------------------------------------------------------------------------------------------
start_nginx "$big_data"
log "nginx at http://127.0.0.1:$nginx_port (pid $nginx_pid)"
start_sb "$runs_dir/store-cached"
log "stablebuild serve at http://$mirror (pid $sb_pid)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $accept" \
    "http://$mirror/v2/library/big/manifests/1")
[ "$code" = 200 ] || die "pinning library/big:1 through the mirror answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $accept" \
    "http://$mirror/v2/library/multi/manifests/1")
[ "$code" = 200 ] || die "pinning library/multi:1 through the mirror answered $code"
sync
sb_blob_url=http://$mirror/v2/library/big/blobs/$big_digest
nginx_blob_url=http://127.0.0.1:$nginx_port/blob
log "1. blob GET: 1 warmup + $runs timed runs per server ($blob_size bytes, $big_digest)"
get_blob stablebuild "$sb_blob_url" /dev/null
get_blob nginx "$nginx_blob_url" /dev/null
nginx_pids="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
: >"$work/blob.sb"
: >"$work/blob.nginx"
# shellcheck disable=SC2086 # a list of pids
cpu_before="$(cpu_ticks "$sb_pid") $(cpu_ticks $nginx_pids)"
for ((i = 0; i < runs; i++)); do
    if ((i % 2 == 0)); then
        get_blob stablebuild "$sb_blob_url" "$work/blob.sb"
        get_blob nginx "$nginx_blob_url" "$work/blob.nginx"
    else
        get_blob nginx "$nginx_blob_url" "$work/blob.nginx"
        get_blob stablebuild "$sb_blob_url" "$work/blob.sb"
    fi
done
read -r sb0 ng0 <<<"$cpu_before"
sb_cpu=$(($(cpu_ticks "$sb_pid") - sb0))
# shellcheck disable=SC2086 # a list of pids
nginx_cpu=$(($(cpu_ticks $nginx_pids) - ng0))
# Server CPU seconds per GiB served: steadier than MB/s on a shared machine.
cpu_per_gib() {
    awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$runs" -v s="$blob_size" \
        'BEGIN { printf "%.2f", t / hz / (n * s / 1073741824) }'
}
stop_pid "$nginx_pid"
nginx_pid=""

# ------------------------------------------------------------------------------------------
# 2. Cached manifest GETs by tag
# ------------------------------------------------------------------------------------------
# run_wrk NAME URL RESULT: one wrk run; appends requests/s to RESULT.
run_wrk() {
    local out rps
    out=$(wrk -t2 -c8 "-d${wrk_duration}s" -H "Accept: $accept" "$2" 2>&1) ||
        { echo "$out" >&2; die "wrk against $1 failed"; }
    if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
        echo "$out" >&2
        die "wrk: $1 answered errors"
    fi
    rps=$(sed -n 's/^Requests\/sec:[[:space:]]*//p' <<<"$out")
    [ -n "$rps" ] || { echo "$out" >&2; die "wrk printed no Requests/sec for $1"; }
    echo "$rps" >>"$3"
}
sb_manifest_url=http://$mirror/v2/library/multi/manifests/1
reg_manifest_url=http://$registry/v2/library/multi/manifests/1
for u in "$sb_manifest_url" "$reg_manifest_url"; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $accept" "$u")" = 200 ] ||
        die "GET $u did not answer 200"
done
log "2. manifest GETs: $runs wrk runs of ${wrk_duration}s per server"
: >"$work/wrk.sb"
: >"$work/wrk.registry"
for ((i = 0; i < runs; i++)); do
    if ((i % 2 == 0)); then order=(sb registry); else order=(registry sb); fi
    for who in "${order[@]}"; do
        if [ "$who" = sb ]; then
            run_wrk stablebuild "$sb_manifest_url" "$work/wrk.sb"
        else
            run_wrk registry "$reg_manifest_url" "$work/wrk.registry"
        fi
    done
done
stop_sb

# ------------------------------------------------------------------------------------------
# 3. Cold pull through the mirror vs straight from the upstream
# ------------------------------------------------------------------------------------------
# pull_one mirror|direct|proxy RESULT: one skopeo copy of library/big:1 into a fresh OCI dir;
# for the mirror, through a server with a fresh empty store, and for the proxy, through the
# distribution registry in proxy mode with fresh empty storage (either started and stopped
# untimed).
pull_one() {
    local how=$1 result=$2 dir src t0 t1
    dir=$(mktemp -d "$runs_dir/oci.XXXXXX")
    case "$how" in
        mirror) start_sb "$(mktemp -d "$runs_dir/store.XXXXXX")"; src=$mirror ;;
        proxy) start_proxy; src=$proxy ;;
        *) src=$registry ;;
    esac
    t0=$(now_us)
    $on_client_cpu skopeo --policy "$policy" copy --src-tls-verify=false \
        "docker://$src/library/big:1" "oci:$dir:1" >"$work/pull.out" 2>&1 ||
        { cat "$work/pull.out" >&2; die "skopeo copy from $how ($src) failed"; }
    t1=$(now_us)
    [ -s "$dir/index.json" ] || die "skopeo left no $dir/index.json"
    case "$how" in
        mirror) stop_sb ;;
        proxy) stop_pid "$proxy_pid"; proxy_pid="" ;;
    esac
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", (b - a) / 1e6 }' >>"$result"
    rm -rf -- "$runs_dir"/oci.* "$runs_dir"/store.* "$runs_dir"/proxy.*
    sync
}
# start_proxy: the distribution registry as a pull-through cache of the upstream, on fresh
# storage. Sets proxy_pid and proxy.
start_proxy() {
    launch_registry proxy "$(mktemp -d "$runs_dir/proxy.XXXXXX")" \
        "$(printf 'proxy:\n  remoteurl: http://%s' "$registry")"
    proxy_pid=$launched_pid
    proxy=$launched_addr
}
# pull_rounds TAG WAY...: $runs timed pulls of each WAY, their order rotated every run; the
# seconds go to $work/pull.TAG.WAY.
pull_rounds() { rotate_runs pull_one "pull.$1" "${@:2}"; }
log "3. cold pull of library/big:1: 1 warmup + $runs timed runs per way (mirror, direct, proxy)"
pull_one mirror /dev/null
pull_one direct /dev/null
pull_one proxy /dev/null
pull_rounds cold mirror direct proxy
# The same mirror/direct comparison with skopeo alone on CPU 1 and the registry and the mirror
# on CPU 0: what the mirror costs when it does not take CPU from the client (as on a mirror
# host of its own). Needs two CPUs.
split=no
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    split=yes
    log "3c. the same with skopeo on CPU 1, registry and mirror on CPU 0: $runs runs per way"
    taskset -a -p -c 0 "$registry_pid" >/dev/null
    on_server_cpu="taskset -c 0"
    on_client_cpu="taskset -c 1"
    pull_one mirror /dev/null
    pull_rounds split mirror direct
    on_server_cpu=""
    on_client_cpu=""
    taskset -a -p -c "0-$(($(nproc) - 1))" "$registry_pid" >/dev/null
fi

# ------------------------------------------------------------------------------------------
# 4. Peak memory during concurrent cold pulls
# ------------------------------------------------------------------------------------------
log "4. $pulls concurrent cold pulls of library/big:1, $memory_runs time(s)"
: >"$work/mem"
for ((r = 0; r < memory_runs; r++)); do
    start_sb "$(mktemp -d "$runs_dir/store.XXXXXX")"
    pull_pids=()
    t0=$(now_us)
    for ((p = 0; p < pulls; p++)); do
        skopeo --policy "$policy" copy --src-tls-verify=false \
            "docker://$mirror/library/big:1" "oci:$runs_dir/oci.$p:1" \
            >"$work/cpull.$p" 2>&1 &
        pull_pids+=($!)
    done
    failed=0
    for p in "${!pull_pids[@]}"; do
        wait "${pull_pids[$p]}" || { failed=1; cat "$work/cpull.$p" >&2; }
    done
    pull_pids=()
    t1=$(now_us)
    [ "$failed" = 0 ] || die "a concurrent skopeo copy through the mirror failed"
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$sb_pid/status")
    stop_sb
    awk -v a="$t0" -v b="$t1" -v m="$hwm" 'BEGIN { printf "%d %.3f\n", m, (b - a) / 1e6 }' >>"$work/mem"
    rm -rf -- "$runs_dir"/oci.* "$runs_dir"/store.*
    sync
done

# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
measure_seconds=$((SECONDS - measure_start))
print_machine "stores and OCI dirs here"
echo "server stderr:   to a file in the work dir, never the terminal (default log level: warn)"
echo "nginx:           $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //') (sendfile on, 1 worker)"
echo "registry:        $(docker-registry --version)"
echo "skopeo:          $(skopeo --version)"
echo "wrk:             $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo "settings:        runs=$runs big-size=$big_size wrk=-t2 -c8 -d${wrk_duration}s" \
    "pulls=$pulls memory-runs=$memory_runs"
echo

echo "== per-run values"
printf '%-28s' "blob GET MB/s stablebuild"; awk '{ printf " %.0f", $1 / 1e6 }' "$work/blob.sb"; echo
printf '%-28s' "blob GET MB/s nginx"; awk '{ printf " %.0f", $1 / 1e6 }' "$work/blob.nginx"; echo
printf '%-28s' "blob GET CPU s/GiB sb/nginx"; echo " $(cpu_per_gib "$sb_cpu") / $(cpu_per_gib "$nginx_cpu") (all runs)"
printf '%-28s' "manifest req/s stablebuild"; awk '{ printf " %.0f", $1 }' "$work/wrk.sb"; echo
printf '%-28s' "manifest req/s registry"; awk '{ printf " %.0f", $1 }' "$work/wrk.registry"; echo
per_run() { printf '%-28s' "$1"; awk '{ printf " %.3f", $1 }' "$2"; echo; }
per_run "cold pull s via mirror" "$work/pull.cold.mirror"
per_run "cold pull s direct" "$work/pull.cold.direct"
per_run "cold pull s via dist. proxy" "$work/pull.cold.proxy"
if [ "$split" = yes ]; then
    per_run "skopeo on CPU 1: via mirror" "$work/pull.split.mirror"
    per_run "skopeo on CPU 1: direct" "$work/pull.split.direct"
fi
printf '%-28s' "$pulls pulls: VmHWM MiB/wall s"; awk '{ printf " %.1f/%.1f", $1 / 1024, $2 }' "$work/mem"; echo
echo

met=0
total=4
ratio() { awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'; } # of the current a and b
verdict() { # A B EXPR: sets v to PASS when EXPR (over a and b) holds, else MISS
    v=$(awk -v a="$1" -v b="$2" "BEGIN { print ($3) ? \"PASS\" : \"MISS\" }")
    if [ "$v" = PASS ]; then met=$((met + 1)); fi
}
echo "== medians of $runs runs (ratio = stablebuild / reference)"
row='%-34s %12s %12s %7s %9s %5s\n'
printf "$row" measurement stablebuild reference ratio target ""
a=$(median 1 "$work/blob.sb"); b=$(median 1 "$work/blob.nginx")
verdict "$a" "$b" 'a >= 0.9 * b'
printf "$row" "1. blob GET MB/s (vs nginx)" "$(awk -v x="$a" 'BEGIN { printf "%.0f", x / 1e6 }')" \
    "$(awk -v x="$b" 'BEGIN { printf "%.0f", x / 1e6 }')" \
    "$(ratio)" ">=0.9" "$v"
a=$(median 1 "$work/wrk.sb"); b=$(median 1 "$work/wrk.registry")
verdict "$a" "$b" 'a >= 3 * b'
printf "$row" "2. manifest req/s (vs registry)" "$(printf '%.0f' "$a")" "$(printf '%.0f' "$b")" \
    "$(ratio)" ">=3" "$v"
a=$(median 1 "$work/pull.cold.mirror"); b=$(median 1 "$work/pull.cold.direct")
verdict "$a" "$b" 'a <= 1.15 * b'
printf "$row" "3. cold pull s (vs direct)" "$(printf '%.3f' "$a")" "$(printf '%.3f' "$b")" \
    "$(ratio)" "<=1.15" "$v"
# For reference, no verdict: distribution's own proxy mode, and the mirror when skopeo has a
# CPU of its own.
a=$(median 1 "$work/pull.cold.proxy")
printf "$row" "   dist. proxy mode s (vs direct)" "($(printf '%.3f' "$a"))" "$(printf '%.3f' "$b")" \
    "$(ratio)" "ref." ""
if [ "$split" = yes ]; then
    a=$(median 1 "$work/pull.split.mirror"); b=$(median 1 "$work/pull.split.direct")
    printf "$row" "   skopeo on own CPU s (vs direct)" "$(printf '%.3f' "$a")" "$(printf '%.3f' "$b")" \
        "$(ratio)" "info" ""
fi
# Every memory run must stay under the limit: the verdict uses the largest peak.
a=$(sort -g "$work/mem" | tail -n 1 | awk '{ print $1 / 1024 }')
verdict "$a" 128 'a < b'
printf "$row" "4. peak RSS MiB, $pulls cold pulls" "$(printf '%.1f' "$a")" - - "<128" "$v"
echo
echo "targets met: $met of $total; big image: $big_size bytes;" \
    "total time ${SECONDS}s (build ${build_seconds}s, measuring ${measure_seconds}s)"
