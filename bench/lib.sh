# Shared parts of the benchmark scripts (bench/pin.sh, bench/serve.sh, bench/shared.sh,
# bench/workflow.sh); not a script of its own. Each script sources it right after
# `set -euo pipefail`:
#
#   source "$(dirname "$0")/lib.sh"
#
# Defining the functions does nothing yet; the script calls them in its own order. Globals
# they set: root (the repo root, also the working directory after enter_root), sb_bin,
# loader_bin and build_seconds (build_binaries), work, policy and runs_dir (make_work_dir),
# registry_pid, registry_port and registry (start_registry), load_start and pressure_start
# (note_load_start), sb_pid and mirror (launch_sb), nginx_pid and nginx_port (start_nginx),
# index_type (tag_many); accept (a client's manifest Accept list) is set on sourcing.
# Read if set: registry_access_log (launch_registry).

# The name messages start with: "bench/pin.sh", "bench/serve.sh", "bench/shared.sh" or
# "bench/workflow.sh".
bench_name=bench/${0##*/}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "$bench_name: $*" >&2; exit 1; }

# check_integers NAME:VALUE:MIN...: exits 2 naming the first option whose VALUE is not an
# integer >= MIN.
check_integers() {
    local pair name value min
    for pair in "$@"; do
        IFS=: read -r name value min <<<"$pair"
        if ! [[ $value =~ ^[0-9]+$ ]] || [ "$value" -lt "$min" ]; then
            echo "$bench_name: --$name must be an integer >= $min (got '$value')" >&2
            exit 2
        fi
    done
}

# enter_root: makes a relative CARGO_TARGET_DIR absolute (relative to where the script was
# started), then changes to the repo root.
enter_root() {
    if [ -n "${CARGO_TARGET_DIR:-}" ]; then
        CARGO_TARGET_DIR=$(realpath -m -- "$CARGO_TARGET_DIR")
        export CARGO_TARGET_DIR
    fi
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    cd "$root"
}

# ------------------------------------------------------------------------------------------
# Debian packages
# ------------------------------------------------------------------------------------------
need_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
        # The package may start a system registry on :5000; this script never uses it.
        if [[ " ${missing[*]} " == *" docker-registry "* ]]; then
            systemctl disable --now docker-registry >/dev/null 2>&1 || true
        fi
    fi
}

# ------------------------------------------------------------------------------------------
# Build (cargo reports where the binaries are, wherever the target dir is)
# ------------------------------------------------------------------------------------------
# build_binaries: builds stablebuild and the load_fixtures example in release mode; sets
# sb_bin, loader_bin and build_seconds.
build_binaries() {
    local build_start build_json b
    log "building stablebuild and the load_fixtures example (release)"
    build_start=$SECONDS
    build_json=$(cargo build --release --bin stablebuild --example load_fixtures \
        --message-format=json-render-diagnostics)
    sb_bin=$(executable stablebuild)
    loader_bin=$(executable load_fixtures)
    for b in "$sb_bin" "$loader_bin"; do
        if [ -z "$b" ] || [ ! -x "$b" ]; then
            die "cargo did not report the built binaries"
        fi
    done
    build_seconds=$((SECONDS - build_start))
}
executable() {
    # $1: target name. Prints the path of the executable cargo built for it.
    printf '%s\n' "$build_json" |
        grep '"reason":"compiler-artifact"' |
        grep "\"name\":\"$1\"" |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1
}

# ------------------------------------------------------------------------------------------
# Work dir, registry, cleanup
# ------------------------------------------------------------------------------------------
stop_pid() { # PID: TERM it and reap it
    if [ -n "$1" ]; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

# stop_own: the script's own processes, stopped on exit before the registry. A script that
# starts any redefines it after sourcing this file.
stop_own() { :; }

cleanup() {
    local status=$?
    stop_own
    stop_pid "$registry_pid"
    rm -rf -- "$work"
    exit "$status"
}

# make_work_dir: a temp dir (work) removed on exit, however the script exits, after stopping
# every process it started; a permissive skopeo policy (policy); runs_dir under work, where
# the runs write.
make_work_dir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/stablebuild-bench.XXXXXX")
    registry_pid=""
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    policy=$work/policy.json
    printf '%s\n' '{"default":[{"type":"insecureAcceptAnything"}]}' >"$policy"
    runs_dir=$work/runs
    mkdir -p "$work/registry" "$runs_dir"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# launch_registry NAME STORAGE [EXTRA_YAML]: a distribution registry on a free loopback port
# (never 5000) with its storage in STORAGE and EXTRA_YAML appended to its config (a `proxy:`
# section, say); its log goes to $work/NAME.log. STORAGE is a directory (an absolute path: the
# filesystem driver) or the YAML of another storage driver, indented to go under `storage:`
# (two spaces, e.g. "  s3:" and its keys below it). Waits for GET /v2/ to answer 200. Sets
# launched_pid and launched_addr (127.0.0.1:PORT). Its access log is off unless the caller set
# registry_access_log=1: then every request it answers is one line of $work/NAME.log
# (combined log format: "METHOD PATH HTTP/1.1" STATUS ...), which count_requests counts. The registry never sees AWS_CA_BUNDLE:
# distribution's s3 driver panics at start when it is set ("LoadCustomCABundleError").
launch_registry() {
    local name=$1 storage=$2 extra=${3:-} attempt port i code access_off=true
    launched_pid=""
    launched_addr=""
    if [ "${registry_access_log:-}" = 1 ]; then access_off=false; fi
    if [[ $storage == /* ]]; then
        storage=$(printf '  filesystem:\n    rootdirectory: %s' "$storage")
    fi
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + RANDOM % 40000))
        if [ "$port" -eq 5000 ] || port_in_use "$port"; then continue; fi
        cat >"$work/$name.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: $access_off
storage:
$storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: $(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
$extra
EOF
        env -u AWS_CA_BUNDLE docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
        launched_pid=$!
        for i in $(seq 1 100); do
            if ! kill -0 "$launched_pid" 2>/dev/null; then break; fi
            code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
            if [ "$code" = 200 ]; then
                launched_addr=127.0.0.1:$port
                return 0
            fi
            sleep 0.1
        done
        stop_pid "$launched_pid"
        launched_pid=""
        log "$name did not come up on port $port; trying another"
        tail -n 5 "$work/$name.log" >&2 || true
    done
    die "could not start docker-registry ($name)"
}

# start_registry: the upstream registry, storage in $work/registry. Sets registry_pid,
# registry_port and registry (127.0.0.1:PORT).
start_registry() {
    launch_registry registry "$work/registry"
    registry_pid=$launched_pid
    registry=$launched_addr
    registry_port=${registry##*:}
    log "registry at http://$registry (pid $registry_pid)"
}

# count_requests NAME: how many requests the registry NAME has answered so far (the lines of
# its access log; see launch_registry).
count_requests() {
    grep -cE '"(GET|HEAD|PUT|POST|PATCH|DELETE) [^"]* HTTP/[0-9.]+" [0-9]{3} ' \
        "$work/$1.log" || true
}

# load_fixtures: pushes the fixture images (big image: big_size bytes) to the registry; what
# load_fixtures prints ("NAME DIGEST SIZE" lines) goes to $work/fixtures.txt.
load_fixtures() {
    log "loading fixtures (big image: $big_size bytes)"
    "$loader_bin" "http://$registry" --big-size "$big_size" >"$work/fixtures.txt"
}

# launch_sb COMMAND...: starts COMMAND, a `stablebuild ... serve --listen 127.0.0.1:0` (maybe
# after `env VAR=...` or `taskset ...`, which exec it), in the background; its stdout goes to
# $work/sb.out, its stderr to $work/sb.log (never the terminal). Waits for its "listening on
# http://ADDR" line and for GET /v2/ to answer 200. Sets sb_pid and mirror (ADDR).
launch_sb() {
    local i addr=""
    : >"$work/sb.log" # before the child opens it: the first look may come first
    "$@" >"$work/sb.out" 2>"$work/sb.log" &
    sb_pid=$!
    for i in $(seq 1 400); do
        addr=$(sed -n 's|^listening on http://||p' "$work/sb.log" | head -n 1)
        if [ -n "$addr" ]; then break; fi
        kill -0 "$sb_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$addr" ]; then
        cat "$work/sb.log" >&2
        die "stablebuild serve did not start"
    fi
    mirror=$addr
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$mirror/v2/")" = 200 ] ||
        die "stablebuild serve at $mirror does not answer GET /v2/ with 200"
}

# The Accept list of a client pulling by tag (every manifest type but schema 1).
accept=application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json
accept+=,application/vnd.docker.distribution.manifest.list.v2+json
accept+=,application/vnd.docker.distribution.manifest.v2+json

# tag_many REPO COUNT: tags t00000 ... of REPO on the registry, COUNT of them, all at the
# index of REPO:1 (curl PUT, xargs -P 8). Writes the index to $work/index.json and the tags
# to $work/tags.all; sets index_type (its media type).
tag_many() {
    local repo=$1 count=$2
    read -r index_type < <(curl -sf -H "Accept: $accept" -o "$work/index.json" \
        -w '%header{content-type}\n' "http://$registry/v2/$repo/manifests/1") ||
        die "GET $repo:1 failed"
    seq -f 't%05g' 0 $((count - 1)) >"$work/tags.all"
    log "tagging $repo $count times (curl PUT, xargs -P 8)"
    xargs -P 8 -I{} curl -sf -o /dev/null -X PUT -H "Content-Type: $index_type" \
        --data-binary "@$work/index.json" "http://$registry/v2/$repo/manifests/{}" \
        <"$work/tags.all" || die "PUT of the tags failed"
}

# start_nginx FILE [CONNECTIONS]: a private nginx (its own prefix and config under $work/nginx, daemon off,
# one worker, sendfile on, access log off) on a free loopback port, serving a copy of FILE as
# /blob, with worker_connections CONNECTIONS (default 256). Sets nginx_pid and nginx_port;
# needs nginx_bin.
start_nginx() {
    local attempt port i connections=${2:-256}
    mkdir -p "$work/nginx/logs" "$work/nginx/tmp" "$work/nginx/html"
    cp -- "$1" "$work/nginx/html/blob"
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + RANDOM % 40000))
        if port_in_use "$port"; then continue; fi
        cat >"$work/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
$( [ "$(id -u)" = 0 ] && echo 'user root;' )
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections $connections; }
http {
    access_log off;
    keepalive_requests 100000000;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$port backlog=4096;
        root $work/nginx/html;
    }
}
NGINX
        "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx/logs/stderr" 2>&1 &
        nginx_pid=$!
        for i in $(seq 1 100); do
            kill -0 "$nginx_pid" 2>/dev/null || break
            if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/blob" -r 0-0)" = 206 ]; then
                nginx_port=$port
                return 0
            fi
            sleep 0.05
        done
        stop_pid "$nginx_pid"
        nginx_pid=""
        log "nginx did not come up on port $port; trying another"
        cat "$work/nginx/logs/stderr" "$work/nginx/logs/error.log" >&2 2>/dev/null || true
    done
    die "could not start nginx"
}

# ------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------
now_us() { local t=$EPOCHREALTIME; printf '%s' "${t//[!0-9]/}"; }

# rotate_runs FUNC NAME WAY...: $runs rounds of `FUNC WAY $work/NAME.WAY`, one call per WAY
# a round, the order rotated by one every round (so that no way always runs first or after
# the same other one); each result file is emptied first.
rotate_runs() {
    local func=$1 name=$2 i k way
    shift 2
    for way in "$@"; do : >"$work/$name.$way"; done
    for ((i = 0; i < runs; i++)); do
        for ((k = 0; k < $#; k++)); do
            way=${*:$(((i + k) % $# + 1)):1}
            "$func" "$way" "$work/$name.$way"
        done
    done
}

median() { # column of FILE
    awk -v c="$1" '{ print $c }' "$2" | sort -g | awk '
        { v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# get_blob NAME URL RESULT [CURL_OPTION...]: one `curl -o /dev/null` of URL (with the extra
# options, e.g. signing); checks for 200 and blob_size bytes; appends bytes/s to RESULT.
get_blob() {
    local name=$1 url=$2 result=$3 out code size speed
    shift 3
    out=$(curl -s "$@" -o /dev/null -w '%{http_code} %{size_download} %{speed_download}' "$url") ||
        die "curl $url failed ($name)"
    read -r code size speed <<<"$out"
    [ "$code" = 200 ] && [ "$size" = "$blob_size" ] ||
        die "$name: GET $url answered $code with $size bytes (want 200, $blob_size)"
    echo "$speed" >>"$result"
}

# cpu_ticks PID...: user + system clock ticks used so far by these processes.
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    echo "$total"
}

# CPU pressure (share of time some runnable task waited for a CPU): other work on the machine.
cpu_pressure() { sed -n 's/^some avg10=[^ ]* avg60=\([^ ]*\) avg300=\([^ ]*\).*/\1% (1 min), \2% (5 min)/p' \
    /proc/pressure/cpu 2>/dev/null || true; }

# note_load_start: load average and CPU pressure before measuring, for print_machine.
note_load_start() {
    load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    pressure_start=$(cpu_pressure)
}

# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
# print_machine WHAT: the start of the report, the "== machine" section up to the stablebuild
# line; WHAT says what runs_dir holds. The script prints its other tools' versions after it.
print_machine() {
    local fs_type fs_dev rev
    fs_type=$(df -PT "$runs_dir" | awk 'NR == 2 { print $2 }')
    fs_dev=$(df -PT "$runs_dir" | awk 'NR == 2 { print $1 }')
    echo
    echo "== machine"
    echo "date:            $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host:            $(uname -srm), nproc $(nproc)," \
        "$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
    echo "cpu:             $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "load average:    $load_start before measuring, $(cut -d' ' -f1-3 /proc/loadavg) after"
    if [ -n "$pressure_start" ]; then
        echo "cpu pressure:    $pressure_start before measuring, $(cpu_pressure) after"
    fi
    echo "work dir:        $runs_dir ($fs_type on $fs_dev; $1)"
    rev=$(git rev-parse --short HEAD 2>/dev/null || echo 'no git')
    if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        rev="$rev + local changes"
    fi
    echo "stablebuild:     $("$sb_bin" --version) ($rev)"
}
