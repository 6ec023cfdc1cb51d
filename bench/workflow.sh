#!/usr/bin/env bash
# Benchmark: the pin-workflow commands against what a user would script without them, all in
# the same run, against one local distribution registry:
#   1. `stablebuild twins library/multi:1` on a repository of 1,000+ tags
#      vs `skopeo list-tags` + `skopeo inspect --raw` per tag (xargs -P 16), digests compared
#   2. `stablebuild drift` of 1,000 pinned tags
#      vs `curl -sI` per tag (xargs -P 16) reading Docker-Content-Digest
#   3. `stablebuild lock` of a 20-stage Dockerfile whose images are all pinned (and a second
#      lock of the locked file), counting the registry's requests meanwhile (must be 0)
#      vs `stablebuild pin -f` of the same file
#
#   bash bench/workflow.sh [--quick] [--runs N] [--tags N] [--stages N] [--warmup N]
#
# See bench/README.md. The script is a measurement: it exits 0 when a target is missed, and
# non-zero only when a command fails or the two sides disagree.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
    cat <<'USAGE'
usage: bash bench/workflow.sh [options]

  --quick        fast check: 3 runs, no warmup
  --runs N       timed runs per measurement and side (default 5; env BENCH_RUNS)
  --tags N       tags created in library/multi besides its own tag 1, all pinned for drift
                 (default 1000; env BENCH_TAGS)
  --stages N     FROM stages of the generated Dockerfile (default 20; at most --tags)
  --warmup N     untimed runs per measurement and side first (default 1; env BENCH_WARMUP)
  -h, --help     this text

Honours CARGO_TARGET_DIR (default target/) and TMPDIR (default /tmp).
USAGE
}

# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------
runs=${BENCH_RUNS:-5}
tags=${BENCH_TAGS:-1000}
stages=20
warmup=${BENCH_WARMUP:-1}
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) runs=3; warmup=0; shift ;;
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --runs=*) runs=${1#*=}; shift ;;
        --tags) tags=${2:?--tags needs a value}; shift 2 ;;
        --tags=*) tags=${1#*=}; shift ;;
        --stages) stages=${2:?--stages needs a value}; shift 2 ;;
        --stages=*) stages=${1#*=}; shift ;;
        --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
        --warmup=*) warmup=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/workflow.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
check_integers "runs:$runs:1" "tags:$tags:10" "stages:$stages:1" "warmup:$warmup:0"
if [ "$stages" -gt "$tags" ]; then
    echo "bench/workflow.sh: --stages ($stages) must not exceed --tags ($tags)" >&2
    exit 2
fi

enter_root
# Flags are passed explicitly; make sure nothing in the caller's environment changes them.
unset STABLEBUILD_STORE STABLEBUILD_UPSTREAM STABLEBUILD_SERVER STABLEBUILD_TOKEN RUST_LOG

# ------------------------------------------------------------------------------------------
# Packages, build, work dir, registry (with its access log on), fixtures (see bench/lib.sh)
# ------------------------------------------------------------------------------------------
need_packages docker-registry skopeo curl jq
build_binaries
make_work_dir
registry_access_log=1 # every request the registry answers is a line of $work/registry.log
start_registry
big_size=$((1 << 20)) # library/big:1 is not used here; keep it small
load_fixtures

repo=library/multi
accept=application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json
accept+=,application/vnd.docker.distribution.manifest.list.v2+json
accept+=,application/vnd.docker.distribution.manifest.v2+json

# fetch_manifest REF FILE: GETs the manifest REF of $repo into FILE; prints
# "MEDIA_TYPE DIGEST" (Content-Type and Docker-Content-Digest).
fetch_manifest() {
    curl -sf -H "Accept: $accept" -o "$2" \
        -w '%header{content-type} %header{docker-content-digest}\n' \
        "http://$registry/v2/$repo/manifests/$1" || die "GET $repo manifest $1 failed"
}

# The tags: t0000 ... under library/multi, most at the index of library/multi:1, every tenth
# (t0009, t0019, ...) at its first platform's manifest (already in the repository by digest),
# so that the repository has two manifests under many tags, as a real one has.
read -r index_type index_digest < <(fetch_manifest 1 "$work/index.json")
child_digest=$(jq -r '.manifests[0].digest' "$work/index.json")
read -r child_type child_digest_got < <(fetch_manifest "$child_digest" "$work/child.json")
[ "$child_digest_got" = "$child_digest" ] || die "child manifest digest mismatch"
: >"$work/tags.index"
: >"$work/tags.child"
for ((i = 0; i < tags; i++)); do
    tag=$(printf 't%04d' "$i")
    if ((i % 10 == 9)); then echo "$tag" >>"$work/tags.child"; else echo "$tag" >>"$work/tags.index"; fi
done
sort "$work/tags.index" "$work/tags.child" >"$work/tags.all"
log "tagging $repo: $(wc -l <"$work/tags.index") tags at $index_digest," \
    "$(wc -l <"$work/tags.child") at $child_digest (curl PUT, xargs -P 8)"
put_tags() { # TAG_FILE MEDIA_TYPE MANIFEST_FILE
    xargs -P 8 -I{} curl -sf -o /dev/null -X PUT -H "Content-Type: $2" \
        --data-binary "@$3" "http://$registry/v2/$repo/manifests/{}" <"$1" ||
        die "PUT of the tags in $1 failed"
}
put_tags "$work/tags.index" "$index_type" "$work/index.json"
put_tags "$work/tags.child" "$child_type" "$work/child.json"
repo_tags=$(curl -sf "http://$registry/v2/$repo/tags/list" | jq '.tags | length')
[ "$repo_tags" -eq $((tags + 1)) ] || die "$repo has $repo_tags tags, want $((tags + 1))"
# The expected twins of library/multi:1: itself and every tag at the index.
sort "$work/tags.index" - <<<1 >"$work/twins.expected"

# Pin every created tag into one store (untimed): drift and lock read it.
store=$runs_dir/store
sb=("$sb_bin" --store "$store" --upstream "docker.io=http://$registry")
log "pinning the $tags tags (untimed)"
pin_start=$(now_us)
mapfile -t pin_args < <(sed "s|^|$repo:|" "$work/tags.all")
"${sb[@]}" pin "${pin_args[@]}" >"$work/pin.out" 2>"$work/pin.err" || {
    cat "$work/pin.out" "$work/pin.err" >&2
    die "stablebuild pin of the $tags tags failed"
}
pin_seconds=$(awk -v a="$pin_start" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
# What each tag is pinned at: "TAG DIGEST", sorted.
{
    sed "s|\$| $index_digest|" "$work/tags.index"
    sed "s|\$| $child_digest|" "$work/tags.child"
} | sort >"$work/pinned.expected"

# The Dockerfile: STAGES stages FROM the first pinned tags.
dockerfile=$work/Dockerfile.unlocked
{
    echo "# generated by bench/workflow.sh: $stages stages over pinned tags"
    for ((i = 0; i < stages; i++)); do
        printf 'FROM %s:%s AS s%d\nRUN echo stage %d > /s%d\n\n' \
            "$repo" "$(sed -n "$((i + 1))p" "$work/tags.all")" "$i" "$i" "$i"
    done
    echo "FROM scratch"
    for ((i = 0; i < stages; i++)); do echo "COPY --from=s$i /s$i /"; done
} >"$dockerfile"
sync

# ------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------
# timed CMD...: runs CMD with its stdout in $work/out and stderr in $work/err; sets elapsed
# (seconds) and requests (registry requests answered meanwhile). Dies if CMD fails.
timed() {
    local before t0 t1
    before=$(count_requests registry)
    t0=$(now_us)
    if ! "$@" >"$work/out" 2>"$work/err"; then
        echo "$bench_name: command failed:" >&2
        printf '  %q' "$@" >&2
        echo >&2
        tail -n 20 "$work/out" "$work/err" >&2
        exit 1
    fi
    t1=$(now_us)
    sleep 0.05 # the registry writes a request's log line after its answer
    requests=$(($(count_requests registry) - before))
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e6 }')
}
record() { # RESULT: appends "seconds requests"
    if [ -n "$1" ]; then echo "$elapsed $requests" >>"$1"; fi
}

# The reference for twins: list the tags, fetch each manifest raw (16 at a time), hash it,
# keep the tags whose digest is that of IMAGE's tag. Prints the twins' tags, sorted.
skopeo_twins() {
    local list
    list=$(skopeo list-tags --tls-verify=false "docker://$registry/$repo")
    # shellcheck disable=SC2016 # the inner script expands its own arguments
    jq -r '.Tags[]' <<<"$list" |
        xargs -P 16 -I{} bash -c 'set -euo pipefail
            d=$(skopeo inspect --raw --tls-verify=false "docker://$1/$2:$3" | sha256sum)
            echo "$3 sha256:${d%% *}"' _ "$registry" "$repo" {} >"$work/skopeo.digests"
    awk 'NR == FNR { if ($1 == "1") want = $2; next } $2 == want { print $1 }' \
        "$work/skopeo.digests" "$work/skopeo.digests" | sort
}
twins_one() { # WAY RESULT
    case "$1" in
        stablebuild)
            # An empty store: IMAGE's digest comes from the upstream, as for a first look.
            timed "$sb_bin" --json --store "$runs_dir/no-store" \
                --upstream "docker.io=http://$registry" twins "$repo:1"
            jq -r '.twins[].tag' "$work/out" | sort >"$work/twins.got"
            ;;
        skopeo)
            timed skopeo_twins
            cp "$work/out" "$work/twins.got"
            ;;
    esac
    cmp -s "$work/twins.got" "$work/twins.expected" || {
        echo "$bench_name: $1 found other twins of $repo:1 than expected:" >&2
        diff "$work/twins.expected" "$work/twins.got" | head -n 20 >&2
        exit 1
    }
    record "$2"
}

# The reference for drift: HEAD every pinned tag (16 at a time), read Docker-Content-Digest.
# Prints "TAG DIGEST", sorted.
curl_drift() {
    xargs -P 16 -I{} curl -sfI -o /dev/null -H "Accept: $accept" \
        -w '{} %header{docker-content-digest}\n' \
        "http://$registry/v2/$repo/manifests/{}" <"$work/tags.all" | sort
}
drift_one() { # WAY RESULT
    case "$1" in
        stablebuild)
            timed "${sb[@]}" --json drift
            jq -r '.entries[] | select(.state == "same") | .reference' "$work/out" |
                sed 's|.*:||' | sort >"$work/drift.same"
            cmp -s "$work/drift.same" "$work/tags.all" || {
                echo "$bench_name: stablebuild drift did not report every tag as same:" >&2
                head -c 2000 "$work/out" >&2
                exit 1
            }
            ;;
        curl)
            timed curl_drift
            cmp -s "$work/out" "$work/pinned.expected" || {
                echo "$bench_name: the HEADs did not answer the pinned digests:" >&2
                diff "$work/pinned.expected" "$work/out" | head -n 20 >&2
                exit 1
            }
            ;;
    esac
    record "$2"
}

# lock: a fresh unlocked copy each run (untimed), locked; every FROM must then carry a digest.
# relock: lock again the file that lock just wrote; it must not change. pin-f: `pin -f` of the
# unlocked file (every tag already pinned).
lock_one() { # WAY RESULT
    local dir file
    dir=$(mktemp -d "$runs_dir/lock.XXXXXX")
    file=$dir/Dockerfile
    cp -- "$dockerfile" "$file"
    case "$1" in
        lock)
            timed "${sb[@]}" lock "$file"
            [ "$(grep -cE "^FROM $repo:t[0-9]+@sha256:[0-9a-f]{64} AS s" "$file")" -eq "$stages" ] || {
                echo "$bench_name: lock left FROM lines without a digest:" >&2
                grep '^FROM' "$file" >&2
                exit 1
            }
            ;;
        relock)
            "${sb[@]}" lock "$file" >/dev/null 2>&1 || die "lock of $file failed"
            cp -- "$file" "$dir/locked"
            timed "${sb[@]}" lock "$file"
            cmp -s "$file" "$dir/locked" || die "a second lock changed the locked file"
            ;;
        pin-f)
            timed "${sb[@]}" pin -f "$file"
            ;;
    esac
    record "$2"
    rm -rf -- "$dir"
}

note_load_start
log "twins: $warmup warmup + $runs timed runs per side ($((tags + 1)) tags)"
for ((i = 0; i < warmup; i++)); do twins_one stablebuild ""; twins_one skopeo ""; done
rotate_runs twins_one twins stablebuild skopeo
log "drift: $warmup warmup + $runs timed runs per side ($tags pinned tags)"
for ((i = 0; i < warmup; i++)); do drift_one stablebuild ""; drift_one curl ""; done
rotate_runs drift_one drift stablebuild curl
log "lock: $warmup warmup + $runs timed runs per way ($stages stages)"
for ((i = 0; i < warmup; i++)); do lock_one lock ""; lock_one relock ""; lock_one pin-f ""; done
rotate_runs lock_one lock lock relock pin-f

# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
print_machine "the store and the lock copies here"
echo "skopeo:          $(skopeo --version)"
echo "curl:            $(curl --version | head -n 1 | cut -d' ' -f1-2)"
echo "registry:        $(docker-registry --version)"
echo "settings:        runs=$runs warmup=$warmup tags=$tags (+ tag 1) stages=$stages;" \
    "pinning the tags took ${pin_seconds}s (untimed)"
echo

rows=("twins stablebuild" "twins skopeo" "drift stablebuild" "drift curl"
    "lock lock" "lock relock" "lock pin-f")
echo "== per-run times (s) / registry requests"
for row in "${rows[@]}"; do
    read -r name way <<<"$row"
    printf '%-6s %-12s' "$name" "$way"
    awk '{ printf " %.3f/%d", $1, $2 }' "$work/$name.$way"
    echo
done
echo

met=0
total=0
# row LABEL FILE REF_FILE TARGET_S: one line of the medians table; REF_FILE may be "-".
row() {
    local label=$1 file=$2 ref=$3 target=$4 s r=- ratio=- req verdict
    s=$(median 1 "$file")
    req=$(median 2 "$file")
    if [ "$ref" != - ]; then
        r=$(median 1 "$ref")
        ratio=$(awk -v a="$s" -v b="$r" 'BEGIN { printf "%.3f", a / b }')
        r=$(printf '%.3f' "$r")
    fi
    verdict=$(awk -v a="$s" -v t="$target" 'BEGIN { print (a < t) ? "PASS" : "MISS" }')
    total=$((total + 1))
    if [ "$verdict" = PASS ]; then met=$((met + 1)); fi
    printf '%-36s %11.3f %10s %7s %8s %5s %9s\n' "$label" "$s" "$r" "$ratio" "<$target" \
        "$verdict" "$req"
}
echo "== medians of $runs runs (seconds; ratio = stablebuild / reference; lower is better)"
printf '%-36s %11s %10s %7s %8s %5s %9s\n' measurement stablebuild reference ratio target \
    time requests
row "1. twins, $((tags + 1)) tags (vs skopeo)" "$work/twins.stablebuild" "$work/twins.skopeo" 5
row "2. drift, $tags tags (vs curl -I)" "$work/drift.stablebuild" "$work/drift.curl" 5
row "3. lock, $stages stages (vs pin -f)" "$work/lock.lock" "$work/lock.pin-f" 0.2
row "   lock of the locked file" "$work/lock.relock" "$work/lock.pin-f" 0.2
# Every lock run, not just the median, must have sent the registry nothing.
lock_requests=$(awk '{ n += $2 } END { print n + 0 }' "$work/lock.lock" "$work/lock.relock")
lock_verdict=$([ "$lock_requests" -eq 0 ] && echo PASS || echo MISS)
total=$((total + 1))
if [ "$lock_verdict" = PASS ]; then met=$((met + 1)); fi
printf '%-36s %11s %10s %7s %8s %5s\n' "   registry requests, all lock runs" "$lock_requests" \
    "$(awk '{ n += $2 } END { print n + 0 }' "$work/lock.pin-f")" - "=0" "$lock_verdict"
echo
echo "targets met: $met of $total; total time ${SECONDS}s (build ${build_seconds}s)"
