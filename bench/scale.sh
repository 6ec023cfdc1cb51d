#!/usr/bin/env bash
# Benchmark: growth, load and faults (issue 14 item 8), one run, one printed table:
#   1. growth: a store with --tags pinned tags (default 10,000: tags of library/multi, all at
#      one index) against a store with 10: `list` wall time and peak RSS (the store-open
#      memory), `serve` start (process start to the first 200 of GET /v2/), and manifest GETs
#      by tag (wrk, req/s), with the distribution registry's tags/list of the same repository
#      beside `list` as the reference for "every tag";
#   2. load: --conns concurrent keep-alive connections (default 1,000) on a cached manifest by
#      tag and on a cached blob, wrk on CPU 1 and the server on CPU 0 (taskset); errors, p50,
#      p99, req/s and the server's peak RSS; nginx serving the same blob the same way beside it;
#      --load-runs rounds (default 3), the median by p99 reported, with the CPU time the
#      hypervisor stole during it (steal: a noisy host shows as a high p99 for every server);
#   3. a fault soak: --images concurrent pull-throughs (default 100) of distinct cold images (a
#      1 MiB layer each)
#      (curl: manifest by tag, then config and layer, each checked against its digest, retried
#      until right) while the upstream is killed (SIGKILL) and restarted every 2 s and the
#      server is killed with SIGKILL once and restarted in the middle; afterwards: clients that
#      got every byte right, `verify`'s verdict, files left in the store's tmp/, and records
#      whose digest is not the upstream's.
#
#   bash bench/scale.sh [--quick] [--tags N] [--conns N] [--images N] [--wrk-duration SECS]
#                       [--load-runs N]
#
# See bench/README.md. The script is a measurement: it exits 0 when a target is missed, and
# non-zero only when a command fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
    cat <<'USAGE'
usage: bash bench/scale.sh [options]

  --quick              fast check: 1,000 tags, 200 connections, 20 images, wrk 3 s once
  --tags N             tags pinned for the growth part (default 10000; env BENCH_TAGS)
  --conns N            concurrent connections of the load part (default 1000)
  --images N           cold images pulled through in the soak (default 100)
  --wrk-duration SECS  duration of each wrk run (default 10; env BENCH_WRK_DURATION)
  --runs N             timed runs of list and of serve's start (default 5; env BENCH_RUNS)
  --load-runs N        rounds of the load part; the median by p99 is shown (default 3)
  -h, --help           this text

Honours CARGO_TARGET_DIR (default target/) and TMPDIR (default /tmp).
USAGE
}

tags=${BENCH_TAGS:-10000}
conns=1000
images=100
wrk_duration=${BENCH_WRK_DURATION:-10}
runs=${BENCH_RUNS:-5}
load_runs=3
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) tags=1000; conns=200; images=20; wrk_duration=3; runs=3; load_runs=1; shift ;;
        --tags) tags=${2:?--tags needs a value}; shift 2 ;;
        --tags=*) tags=${1#*=}; shift ;;
        --conns) conns=${2:?--conns needs a value}; shift 2 ;;
        --conns=*) conns=${1#*=}; shift ;;
        --images) images=${2:?--images needs a value}; shift 2 ;;
        --images=*) images=${1#*=}; shift ;;
        --wrk-duration) wrk_duration=${2:?--wrk-duration needs a value}; shift 2 ;;
        --wrk-duration=*) wrk_duration=${1#*=}; shift ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --runs=*) runs=${1#*=}; shift ;;
        --load-runs) load_runs=${2:?--load-runs needs a value}; shift 2 ;;
        --load-runs=*) load_runs=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/scale.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
check_integers "tags:$tags:20" "conns:$conns:1" "images:$images:1" \
    "wrk-duration:$wrk_duration:1" "runs:$runs:1" "load-runs:$load_runs:1"

enter_root
unset STABLEBUILD_STORE STABLEBUILD_UPSTREAM STABLEBUILD_SERVER STABLEBUILD_TOKEN RUST_LOG

need_packages docker-registry curl jq wrk nginx time
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
build_binaries
make_work_dir
start_registry
big_size=$((1 << 20)) # library/big:1 is pinned too; this script reads none of its bytes
load_fixtures
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((conns + 100)) ] || die "ulimit -n is $(ulimit -n); --conns $conns needs more"

stop_own() {
    stop_pid "${sb_pid:-}"
    stop_pid "${nginx_pid:-}"
    stop_pid "${flapper_pid:-}"
    stop_pid "${soak_registry_pid:-}"
}

repo=library/multi

# ------------------------------------------------------------------------------------------
# 1. Growth
# ------------------------------------------------------------------------------------------
tag_many "$repo" "$tags"

# pin_store DIR COUNT: a store in DIR with the first COUNT tags (and library/big:1) pinned.
pin_store() {
    local -a args
    mapfile -t args < <(head -n "$2" "$work/tags.all" | sed "s|^|$repo:|")
    "$sb_bin" --store "$1" --upstream "docker.io=http://$registry" pin "${args[@]}" big:1 \
        >"$work/pin.out" 2>"$work/pin.err" || { tail -n 20 "$work/pin.err" >&2; die "pin failed"; }
}
log "pinning 10 and $tags tags (untimed)"
pin_store "$runs_dir/small" 10
pin_store "$runs_dir/large" "$tags"
[ "$("$sb_bin" --store "$runs_dir/large" --json list | jq length)" -eq $((tags + 1)) ] ||
    die "the large store does not hold $((tags + 1)) tags"

# time_list STORE RESULT: one `list` of STORE; appends "seconds peak_rss_kib".
time_list() {
    local start end rss
    start=$(now_us)
    rss=$(command time -f %M "$sb_bin" --store "$1" list 2>&1 >/dev/null | tail -n 1)
    end=$(now_us)
    echo "$(((end - start) / 1000)) $rss" >>"$2"
}
# time_start STORE RESULT: serve STORE from process start to the first 200 of GET /v2/;
# appends milliseconds, and leaves it running (sb_pid, mirror).
time_start() {
    local start end
    start=$(now_us)
    launch_sb "$sb_bin" --store "$1" serve --listen 127.0.0.1:0
    end=$(now_us)
    echo "$(((end - start) / 1000))" >>"$2"
}
wrk_rps() { # URL: req/s of wrk -t2 -c8 on URL; dies on errors
    local out
    out=$(wrk -t2 -c8 "-d${wrk_duration}s" -H "Accept: $accept" "$1" 2>&1) ||
        { echo "$out" >&2; die "wrk failed"; }
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then echo "$out" >&2; die "wrk: errors on $1"; fi
    awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}
declare -A serve_rss_kib
note_load_start
log "growth: $runs rounds of list, serve's start and wrk ${wrk_duration}s per store"
# growth_round SIZE: one list, one start, one wrk run of the store SIZE (small or large).
growth_round() {
    time_list "$runs_dir/$1" "$work/list.$1"
    time_start "$runs_dir/$1" "$work/start.$1"
    wrk_rps "http://$mirror/v2/$repo/manifests/t00001" >>"$work/rps.$1"
    serve_rss_kib[$1]=$(awk '/VmHWM/ { print $2 }' "/proc/$sb_pid/status")
    stop_pid "$sb_pid"
    sb_pid=""
}
for f in list start rps; do : >"$work/$f.small"; : >"$work/$f.large"; done
for ((r = 0; r < runs; r++)); do # the order alternates, so neither store always goes first
    if ((r % 2)); then growth_round large; growth_round small; else growth_round small; growth_round large; fi
done
: >"$work/taglist"
for ((r = 0; r < runs; r++)); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://$registry/v2/$repo/tags/list" |
        awk '{ printf "%d\n", $1 * 1000 }' >>"$work/taglist"
done

# ------------------------------------------------------------------------------------------
# 2. Load: many keep-alive connections, wrk and the server on a CPU each
# ------------------------------------------------------------------------------------------
child=$(jq -r '.manifests[0].digest' "$work/index.json")
blob=$(curl -sf -H "Accept: $accept" "http://$registry/v2/$repo/manifests/$child" |
    jq -r '.config.digest')
blob_size=$(curl -sf -o /dev/null -w '%{size_download}' "http://$registry/v2/$repo/blobs/$blob")
# cpu_steal: the host's stolen and total CPU time so far (/proc/stat, in ticks).
cpu_steal() { awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# load WAY URL: wrk -t1 -c$conns --latency on CPU 1; appends a line "rps p50_ms p99_ms errors
# steal%" to $work/load.WAY.
load() {
    local out errors before after
    before=$(cpu_steal)
    out=$(taskset -c 1 wrk -t1 "-c$conns" "-d${wrk_duration}s" --timeout 10s --latency \
        -H "Accept: $accept" "$2" 2>&1) || { echo "$out" >&2; die "wrk failed ($1)"; }
    after=$(cpu_steal)
    errors=$(awk '/Socket errors/ { gsub(",", ""); s += $4 + $6 + $8 + $10 }
                  /Non-2xx/ { s += $NF } END { print s + 0 }' <<<"$out")
    awk -v e="$errors" -v before="$before" -v after="$after" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                         if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        END { split(before, b, " "); split(after, a, " ");
              steal = (a[2] > b[2]) ? 100 * (a[1] - b[1]) / (a[2] - b[2]) : 0;
              printf "%.0f %.1f %.1f %d %.1f\n", rps, p50, p99, e, steal }' <<<"$out" >>"$work/load.$1"
}
# load_median WAY: the round of WAY with the median p99, its errors replaced by all rounds'.
load_median() {
    local n errors
    n=$(wc -l <"$work/load.$1")
    errors=$(awk '{ s += $4 } END { print s + 0 }' "$work/load.$1")
    sort -n -k3,3 "$work/load.$1" | sed -n "$(((n + 1) / 2))p" |
        awk -v e="$errors" '{ $4 = e; print }'
}
# load_p99s WAY: every round's p99, in the order run.
load_p99s() { awk '{ printf "%s%s", sep, $3; sep = "/" }' "$work/load.$1"; }
log "2. load: $conns connections, wrk ${wrk_duration}s on CPU 1, servers on CPU 0"
launch_sb taskset -c 0 "$sb_bin" --store "$runs_dir/large" serve --listen 127.0.0.1:0
for _ in $(seq "$load_runs"); do
    load manifest "http://$mirror/v2/$repo/manifests/t00001"
    load small "http://$mirror/v2/$repo/manifests/$child"
    load blob "http://$mirror/v2/$repo/blobs/$blob"
done
load_rss_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$sb_pid/status")
stop_pid "$sb_pid"
sb_pid=""
curl -sf -o "$work/blob.bin" "http://$registry/v2/$repo/blobs/$blob"
nginx_real=$nginx_bin
printf '#!/bin/sh\nexec taskset -c 0 %s "$@"\n' "$nginx_real" >"$work/nginx-cpu0"
chmod +x "$work/nginx-cpu0"
nginx_bin=$work/nginx-cpu0
start_nginx "$work/blob.bin" $((2 * conns + 64)) # fewer: nginx closes idle ones
nginx_bin=$nginx_real
for _ in $(seq "$load_runs"); do load nginx "http://127.0.0.1:$nginx_port/blob"; done
stop_pid "$nginx_pid"
nginx_pid=""

# ------------------------------------------------------------------------------------------
# 3. Fault soak
# ------------------------------------------------------------------------------------------
# push_image N: soak/imgN:1, one config and one random layer of soak_layer bytes;
# writes "name manifest_digest config_digest layer_digest" to $work/soak/N.want.
push_blob() { # REPO FILE: monolithic upload; prints the digest
    local d loc
    d=sha256:$(sha256sum "$2" | cut -d' ' -f1)
    loc=$(curl -sf -D - -o /dev/null -X POST "http://$registry/v2/$1/blobs/uploads/" |
        sed -n 's/^[Ll]ocation: *//p' | tr -d '\r')
    case "$loc" in /*) loc=http://$registry$loc ;; esac
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$2" "$loc&digest=$d" || die "upload to $1 failed"
    echo "$d"
}
push_image() {
    local n=$1 dir=$work/soak layer config manifest
    head -c "$soak_layer" /dev/urandom >"$dir/$n.layer"
    layer=$(push_blob "soak/img$n" "$dir/$n.layer")
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{"Env":["N=%s"]}}' \
        "$layer" "$n" >"$dir/$n.config"
    config=$(push_blob "soak/img$n" "$dir/$n.config")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
        "$config" "$(stat -c %s "$dir/$n.config")" "$layer" "$soak_layer" >"$dir/$n.manifest"
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "@$dir/$n.manifest" "http://$registry/v2/soak/img$n/manifests/1" ||
        die "PUT soak/img$n:1 failed"
    manifest=sha256:$(sha256sum "$dir/$n.manifest" | cut -d' ' -f1)
    echo "img$n $manifest $config $layer" >"$dir/$n.want"
}
mkdir -p "$work/soak"
log "3. soak: pushing $images cold images"
export -f push_blob push_image die
soak_layer=$((1 << 20))
export registry work bench_name soak_layer
seq 1 "$images" | xargs -P 8 -I{} bash -c 'push_image {}' || die "pushing the soak images failed"

# The upstream now flaps: the first registry stops, a flapper runs it on the same port and
# config, SIGKILLs it every 2 s and starts it again (until $work/flap.stop exists).
stop_pid "$registry_pid"
registry_pid=""
flapper() {
    local pid kills=0
    while [ ! -e "$work/flap.stop" ]; do
        env -u AWS_CA_BUNDLE docker-registry serve "$work/registry.yml" >>"$work/registry.log" 2>&1 &
        pid=$!
        sleep 2
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        kills=$((kills + 1))
        echo "$kills" >"$work/flap.kills"
    done
}
flapper &
flapper_pid=$!

# pull_one N: pull soak/imgN:1 through the mirror until every byte is right (180 s at most);
# writes "ok ATTEMPTS SECONDS" or "failed ATTEMPTS LAST_ERROR" to $work/soak/N.got.
pull_one() {
    local n=$1 dir=$work/soak name manifest config layer attempt=0 start=$SECONDS err=""
    read -r name manifest config layer <"$dir/$n.want"
    while [ $((SECONDS - start)) -lt 180 ]; do
        attempt=$((attempt + 1))
        if fetch_right "$n" "manifests/1" "$manifest" &&
            fetch_right "$n" "blobs/$config" "$config" &&
            fetch_right "$n" "blobs/$layer" "$layer"; then
            echo "ok $attempt $((SECONDS - start))" >"$dir/$n.got"
            return 0
        fi
        err=$(cat "$dir/$n.err" 2>/dev/null || true)
        sleep 0.5
    done
    echo "failed $attempt $err" >"$dir/$n.got"
}
fetch_right() { # N PATH DIGEST: GET it from the mirror; true when 200 and the digest matches
    local got code
    code=$(curl -s -m 30 -H "Accept: $accept" -o "$work/soak/$1.body" -w '%{http_code}' \
        "http://$mirror/v2/soak/img$1/$2") || code=000
    got=sha256:$(sha256sum "$work/soak/$1.body" | cut -d' ' -f1)
    if [ "$code" = 200 ] && [ "$got" = "$3" ]; then return 0; fi
    echo "$2: $code ${got:0:19}" >"$work/soak/$1.err"
    return 1
}
export -f pull_one fetch_right
soak_store=$runs_dir/soak
port=$((20000 + RANDOM % 40000))
while port_in_use "$port"; do port=$((20000 + RANDOM % 40000)); done
sb_soak=("$sb_bin" --store "$soak_store" --upstream "docker.io=http://$registry")
launch_sb "${sb_soak[@]}" serve --listen "127.0.0.1:$port"
export mirror accept
soak_start=$SECONDS
seq 1 "$images" | xargs -P "$images" -I{} bash -c 'pull_one {}' &
clients_pid=$!
sleep 1.5
log "soak: SIGKILL of the server after 1.5 s, restart on the same port and store"
done_before_kill=$(find "$work/soak" -name '*.got' | wc -l)
kill -9 "$sb_pid"
wait "$sb_pid" 2>/dev/null || true
cp "$work/sb.log" "$work/sb.before-kill.log"
launch_sb "${sb_soak[@]}" serve --listen "127.0.0.1:$port"
wait "$clients_pid" || true
soak_seconds=$((SECONDS - soak_start))
touch "$work/flap.stop"
wait "$flapper_pid" 2>/dev/null || true
flapper_pid=""
stop_pid "$sb_pid"
sb_pid=""
# The upstream for good, so that anything verify or a record check needs is reachable.
env -u AWS_CA_BUNDLE docker-registry serve "$work/registry.yml" >>"$work/registry.log" 2>&1 &
soak_registry_pid=$!

ok=$(cat "$work"/soak/*.got | grep -c '^ok' || true)
max_attempts=$(awk '{ print $2 }' "$work"/soak/*.got | sort -g | tail -n 1)
verify_out=$("$sb_bin" --store "$soak_store" verify 2>&1) && verify=clean || verify="failed"
tmp_left=$(find "$soak_store/tmp" -type f 2>/dev/null | wc -l)
"$sb_bin" --store "$soak_store" --json list >"$work/soak.list"
wrong=0
for want in "$work"/soak/*.want; do
    read -r name manifest _ _ <"$want"
    got=$(jq -r --arg r "docker.io/soak/$name:1" '.[] | select(.reference == $r) | .digest' \
        "$work/soak.list")
    if [ -n "$got" ] && [ "$got" != "$manifest" ]; then wrong=$((wrong + 1)); fi
done
records=$(jq length "$work/soak.list")
kills=$(cat "$work/flap.kills" 2>/dev/null || echo 0)

# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
print_machine "the stores (10 and $tags tags, the soak)"
echo "registry:        $(docker-registry --version 2>/dev/null | head -n 1)"
echo "wrk:             $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo "nginx:           $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
echo
printf '%-52s %14s %14s  %s\n' "== 1. growth (medians of $runs runs)" "10 tags" "$tags tags" "target"
printf '%-52s %14s %14s  %s\n' "list, ms" "$(median 1 "$work/list.small")" \
    "$(median 1 "$work/list.large")" "< 500 ms"
printf '%-52s %14s %14s  %s\n' "list peak RSS (store open), MiB" \
    "$(median 2 "$work/list.small" | awk '{ printf "%.1f", $1 / 1024 }')" \
    "$(median 2 "$work/list.large" | awk '{ printf "%.1f", $1 / 1024 }')" "< 64 MiB"
printf '%-52s %14s %14s  %s\n' "serve start to first GET /v2/ 200, ms" \
    "$(median 1 "$work/start.small")" "$(median 1 "$work/start.large")" "< 1000 ms"
small_rps=$(median 1 "$work/rps.small")
large_rps=$(median 1 "$work/rps.large")
printf '%-52s %14.0f %14.0f  %s\n' "manifest by tag, req/s (wrk -t2 -c8)" "$small_rps" "$large_rps" \
    "within 10% ($(awk -v a="$small_rps" -v b="$large_rps" 'BEGIN { printf "%+.1f%%", (b - a) / a * 100 }'))"
printf '%-52s %14s %14s  %s\n' "serve peak RSS after wrk, MiB" "$((serve_rss_kib[small] / 1024))" \
    "$((serve_rss_kib[large] / 1024))" ""
printf '%-52s %14s %14s  %s\n' "reference: registry tags/list of $repo, ms" "" \
    "$(median 1 "$work/taglist")" "(distribution, $((tags + 1)) tags)"
echo
echo "== 2. load: $conns keep-alive connections (wrk -t1 on CPU 1, server on CPU 0), ${wrk_duration}s each," \
    "median by p99 of $load_runs rounds"
printf '%-40s %8s %7s %7s %6s %6s  %-16s %s\n' "" "req/s" "p50 ms" "p99 ms" "errors" "steal" \
    "p99 of each, ms" "target"
for way in manifest small blob nginx; do
    case "$way" in
        manifest) label="stablebuild: manifest by tag" ;;
        small) label="stablebuild: manifest by digest" ;;
        blob) label="stablebuild: blob GET ($blob_size bytes)" ;;
        nginx) label="reference: nginx, same blob, sendfile" ;;
    esac
    read -r rps p50 p99 errors steal < <(load_median "$way")
    target="p99 < 50 ms, no errors"
    [ "$way" = nginx ] && target=""
    printf '%-40s %8s %7s %7s %6s %5s%%  %-16s %s\n' "$label" "$rps" "$p50" "$p99" "$errors" \
        "$steal" "$(load_p99s "$way")" "$target"
done
echo "server peak RSS (VmHWM) after the three runs: $((load_rss_kib / 1024)) MiB (target < 256 MiB)"
echo
echo "== 3. fault soak: $images concurrent cold pull-throughs, upstream SIGKILLed every 2 s" \
    "($kills kills), server SIGKILLed once"
printf '%-52s %14s  %s\n' "clients with every byte right" "$ok / $images" "all"
printf '%-52s %14s  %s\n' "clients done before the server's SIGKILL" "$done_before_kill" ""
printf '%-52s %14s  %s\n' "most attempts one client needed" "$max_attempts" ""
printf '%-52s %14s  %s\n' "soak wall time, s" "$soak_seconds" ""
printf '%-52s %14s  %s\n' "verify afterwards" "$verify" "clean"
printf '%-52s %14s  %s\n' "files left in the store's tmp/" "$tmp_left" "0"
printf '%-52s %14s  %s\n' "records (of $images) / records not at the upstream's digest" \
    "$records / $wrong" "$images / 0"
if [ "$verify" != clean ]; then echo "verify said:"; echo "$verify_out" | tail -n 20; fi
if [ "$ok" -ne "$images" ]; then grep -v '^ok' "$work"/soak/*.got | head -n 10; fi
