#!/usr/bin/env bash
# Benchmark: the dashboard with many pinned tags, and what it costs the registry API, in one run:
#   1. pages of a store with --tags pinned tags (default 10,000): the cached-tags page (first
#      page, a search, a sort by pulls, a late page), a tag page and the store page, each
#      timed with curl (median and worst of --runs), with its size; beside them, as the
#      reference for "a listing of every tag", GET tags/list of the same repository from the
#      mirror and from the distribution registry;
#   2. the registry API with and without the dashboard: manifest GETs by tag (wrk) and a
#      cached blob GET (curl), against `serve --dashboard off`, `serve` (public dashboard),
#      and `serve` while a watcher loads / and /progress.json every 0.5 s, rounds rotated.
#
#   bash bench/dashboard.sh [--quick] [--runs N] [--tags N] [--wrk-duration SECS]
#
# See bench/README.md. The script is a measurement: it exits 0 when a target is missed, and
# non-zero only when a command fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
    cat <<'USAGE'
usage: bash bench/dashboard.sh [options]

  --quick              fast check: 1,000 tags, 5 page runs, wrk 2 s, 2 rounds
  --runs N             timed GETs per page (default 20; env BENCH_RUNS)
  --tags N             tags created in library/multi and pinned (default 10000; env BENCH_TAGS)
  --wrk-duration SECS  duration of each wrk run (default 5; env BENCH_WRK_DURATION)
  --rounds N           rounds of the API comparison (default 3)
  -h, --help           this text

Honours CARGO_TARGET_DIR (default target/) and TMPDIR (default /tmp).
USAGE
}

runs=${BENCH_RUNS:-20}
tags=${BENCH_TAGS:-10000}
wrk_duration=${BENCH_WRK_DURATION:-5}
rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) runs=5; tags=1000; wrk_duration=2; rounds=2; shift ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --runs=*) runs=${1#*=}; shift ;;
        --tags) tags=${2:?--tags needs a value}; shift 2 ;;
        --tags=*) tags=${1#*=}; shift ;;
        --wrk-duration) wrk_duration=${2:?--wrk-duration needs a value}; shift 2 ;;
        --wrk-duration=*) wrk_duration=${1#*=}; shift ;;
        --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
        --rounds=*) rounds=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/dashboard.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
check_integers "runs:$runs:1" "tags:$tags:10" "wrk-duration:$wrk_duration:1" "rounds:$rounds:1"

enter_root
unset STABLEBUILD_STORE STABLEBUILD_UPSTREAM STABLEBUILD_SERVER STABLEBUILD_TOKEN RUST_LOG

need_packages docker-registry curl jq wrk
build_binaries
make_work_dir
start_registry
big_size=$((16 << 20)) # the blob GETs read library/big:1's layer
load_fixtures

stop_own() {
    stop_pid "${sb_pid:-}"
    stop_pid "${watcher_pid:-}"
}

repo=library/multi

# The tags t00000 ... under library/multi, all at the index of library/multi:1.
tag_many "$repo" "$tags"
curl -sf -o /dev/null -X PUT -H "Content-Type: $index_type" --data-binary "@$work/index.json" \
    "http://$registry/v2/$repo/manifests/late" || die "PUT of the tag late failed"

store=$runs_dir/store
sb=("$sb_bin" --store "$store" --upstream "docker.io=http://$registry")
log "pinning the $tags tags and library/big:1 (untimed)"
mapfile -t pin_args < <(sed "s|^|$repo:|" "$work/tags.all")
"${sb[@]}" pin "${pin_args[@]}" big:1 >"$work/pin.out" 2>"$work/pin.err" || {
    tail -n 20 "$work/pin.err" >&2
    die "stablebuild pin of the $tags tags failed"
}
pinned=$("${sb[@]}" --json list | jq length)
[ "$pinned" -eq $((tags + 1)) ] || die "the store has $pinned tags, want $((tags + 1))"

# ------------------------------------------------------------------------------------------
# 1. Pages
# ------------------------------------------------------------------------------------------
note_load_start
launch_sb "${sb[@]}" serve --listen 127.0.0.1:0
last_page=$(((tags + 1 + 49) / 50))
pages=(
    "cached tags, first page|/"
    "cached tags, search t0999|/?q=t0999"
    "cached tags, search t09|/?q=t09"
    "cached tags, sorted by pulls|/?sort=pulls&dir=desc"
    "cached tags, last page|/?page=$last_page"
    "tag page|/tags/docker.io/$repo:t00001"
    "store page|/store"
    "tags/list (mirror)|/v2/$repo/tags/list"
)
# time_page URL RESULT: one GET; appends "seconds bytes" (and checks for 200).
time_page() {
    local out code
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}' "$1") ||
        die "curl $1 failed"
    read -r code seconds bytes <<<"$out"
    [ "$code" = 200 ] || die "GET $1 answered $code"
    echo "$seconds $bytes" >>"$2"
}
log "1. pages: $runs GETs each ($tags tags)"
i=0
for entry in "${pages[@]}"; do
    url="http://$mirror${entry#*|}"
    if [[ $entry == tags/list* ]]; then # the dashboard's pages are done
        pages_rss_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$sb_pid/status")
    fi
    : >"$work/cold.$i"
    time_page "$url" "$work/cold.$i" # the first: the index is read (see bench/README.md)
    : >"$work/page.$i"
    for ((r = 0; r < runs; r++)); do time_page "$url" "$work/page.$i"; done
    i=$((i + 1))
done
: >"$work/page.registry"
for ((r = 0; r < runs; r++)); do
    time_page "http://$registry/v2/$repo/tags/list" "$work/page.registry"
done
# One more pin while serving (through the server): the next page adds it from the journal.
"${sb[@]}" pin "$repo:late" >/dev/null 2>"$work/late.err" || die "pin of $repo:late failed"
: >"$work/after.pin"
time_page "http://$mirror/" "$work/after.pin"
curl -sf "http://$mirror/?q=late" | grep -q "data-ref=\"docker.io/$repo:late\"" ||
    die "the page after the pin does not list $repo:late"
sb_rss_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$sb_pid/status")
stop_pid "$sb_pid"
sb_pid=""

# ------------------------------------------------------------------------------------------
# 2. The registry API with and without the dashboard
# ------------------------------------------------------------------------------------------
blob=$("${sb[@]}" --json inspect big:1 | jq -r '.root.children[-1].digest')
blob_size=$(curl -sf -o /dev/null -w '%{size_download}' "http://$registry/v2/library/big/blobs/$blob")
watcher() { # MIRROR: what a person watching the dashboard loads
    while true; do
        curl -sf -o /dev/null "http://$1/" || true
        curl -sf -o /dev/null "http://$1/progress.json" || true
        sleep 0.5
    done
}
# api WAY: one round against serve started for WAY (off, on, watched).
api() {
    local way=$1 out rps
    case "$way" in
        off) launch_sb "${sb[@]}" serve --listen 127.0.0.1:0 --dashboard off ;;
        *) launch_sb "${sb[@]}" serve --listen 127.0.0.1:0 ;;
    esac
    if [ "$way" = watched ]; then
        watcher "$mirror" &
        watcher_pid=$!
    fi
    out=$(wrk -t2 -c8 "-d${wrk_duration}s" -H "Accept: $accept" \
        "http://$mirror/v2/$repo/manifests/t00001" 2>&1) || { echo "$out" >&2; die "wrk failed"; }
    if grep -q 'Non-2xx' <<<"$out"; then echo "$out" >&2; die "wrk: $way answered errors"; fi
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    echo "$rps" >>"$work/wrk.$way"
    for _ in 1 2 3 4 5; do
        get_blob "$way" "http://$mirror/v2/library/big/blobs/$blob" "$work/blob.$way"
    done
    stop_pid "${watcher_pid:-}"
    watcher_pid=""
    stop_pid "$sb_pid"
    sb_pid=""
}
log "2. registry API: $rounds rounds of wrk ${wrk_duration}s + 5 blob GETs per way"
ways=(off on watched)
for way in "${ways[@]}"; do : >"$work/wrk.$way"; : >"$work/blob.$way"; done
for ((r = 0; r < rounds; r++)); do
    for ((k = 0; k < 3; k++)); do api "${ways[$(((r + k) % 3))]}"; done
done

# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
print_machine "the store ($tags pinned tags)"

echo "registry:        $(docker-registry --version 2>/dev/null | head -n 1)"
echo "wrk:             $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo
echo "== 1. pages with $((tags + 1)) pinned tags ($runs GETs each, curl time_total on loopback)"
printf '%-40s %9s %10s %9s %8s  %s\n' "page" "first ms" "median ms" "worst ms" "KiB" "target"
row() { # LABEL FILE TARGET [FIRST_FILE]
    local med worst kib first="-"
    med=$(median 1 "$2" | awk '{ printf "%.1f", $1 * 1000 }')
    worst=$(awk '{ print $1 }' "$2" | sort -g | tail -n 1 | awk '{ printf "%.1f", $1 * 1000 }')
    kib=$(median 2 "$2" | awk '{ printf "%.1f", $1 / 1024 }')
    if [ -n "${4:-}" ]; then first=$(awk '{ printf "%.1f", $1 * 1000 }' "$4"); fi
    printf '%-40s %9s %10s %9s %8s  %s\n' "$1" "$first" "$med" "$worst" "$kib" "$3"
}
i=0
for entry in "${pages[@]}"; do
    label=${entry%%|*}
    target=""
    case "$label" in cached*first*|cached*search*) target="< 50 ms, < 100 KiB" ;; esac
    row "$label" "$work/page.$i" "$target" "$work/cold.$i"
    i=$((i + 1))
done
row "cached tags, first page after a pin" "$work/after.pin" "< 50 ms" "$work/after.pin"
row "tags/list (distribution registry)" "$work/page.registry" "reference"
echo "server peak RSS (VmHWM): $((pages_rss_kib / 1024)) MiB after the dashboard's pages," \
    "$((sb_rss_kib / 1024)) MiB after tags/list too"
echo
echo "== 2. registry API with and without the dashboard (medians of $rounds rounds)"
printf '%-28s %22s %22s %22s\n' "" "--dashboard off" "dashboard" "dashboard+watcher"
# cell FILE SCALE: "median (min-max)", each divided by SCALE.
cell() {
    local med lo hi
    med=$(median 1 "$1" | awk -v s="$2" '{ printf "%.0f", $1 / s }')
    lo=$(sort -g "$1" | head -n 1 | awk -v s="$2" '{ printf "%.0f", $1 / s }')
    hi=$(sort -g "$1" | tail -n 1 | awk -v s="$2" '{ printf "%.0f", $1 / s }')
    printf '%s (%s-%s)' "$med" "$lo" "$hi"
}
printf '%-28s %22s %22s %22s\n' "manifest by tag, req/s" \
    "$(cell "$work/wrk.off" 1)" "$(cell "$work/wrk.on" 1)" "$(cell "$work/wrk.watched" 1)"
printf '%-28s %22s %22s %22s\n' "blob GET ($((blob_size >> 20)) MiB), MB/s" \
    "$(cell "$work/blob.off" 1e6)" "$(cell "$work/blob.on" 1e6)" "$(cell "$work/blob.watched" 1e6)"
echo "(median, and min-max over the rounds; the watcher's curl processes share the two cores)"
