# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_stablebuild_global_optspecs
    string join \n config= store= cache= cache-size= upstream= insecure-registry= server= token= json no-wait v/verbose h/help V/version
end

function __fish_stablebuild_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_stablebuild_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_stablebuild_using_subcommand
    set -l cmd (__fish_stablebuild_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c stablebuild -n "__fish_stablebuild_needs_command" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_needs_command" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_needs_command" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_needs_command" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_needs_command" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_needs_command" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_needs_command" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_needs_command" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_needs_command" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -s V -l version -d 'Print version'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "pin" -d 'Snapshot tags into the store (all platforms, all blobs); pinned tags are not fetched again'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "pull" -d 'Export an image from the store (pinning it first when missing)'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "list" -d 'Show what is pinned'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "evict" -d 'Drop tags\' snapshots so that the next pin fetches them again'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "gc" -d 'Remove blobs that no pinned tag reaches'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "verify" -d 'Re-hash every blob and report missing or corrupt ones (exit 1 if any)'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "serve" -d 'Serve the store as a read-only Registry v2 mirror, pinning on a miss'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "inspect" -d 'Show a pinned snapshot as a tree: index, platform manifests, configs and layers (from the store only)'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "migrate" -d 'Copy a local store\'s pinned tags, verified, into a bucket (resumable; nothing is fetched from the upstream)'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "history" -d 'Every pin and evict the store has seen, oldest first, with time, digest and origin'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "lock" -d 'Pin what Dockerfiles and YAML files use and rewrite each reference in place to NAME:TAG@sha256:ROOT (the index digest: every platform)'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "drift" -d 'Compare every pinned tag with the upstream, HEAD requests only: same, moved, gone or error (the store is not changed)'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "twins" -d 'Tags of IMAGE\'s repository that share its digest, most specific first (HEAD requests only)'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "config" -d 'Print every global and serve setting in effect and where it came from: a flag, the environment, the config file (--config) or the default (secrets show as <set>)'
complete -c stablebuild -n "__fish_stablebuild_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -s f -l file -d 'Read references from a file: one per line (# comments), or the FROM lines of a Dockerfile' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -s j -l jobs -d 'Blobs downloaded in parallel' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l dated -d 'Pin each image\'s most specific twin instead (ubuntu:20.04 → ubuntu:focal-20230801; see `twins`), saying so on stderr'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pin" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -s o -l output -d 'Where to write: a directory (OCI layout), NAME.tar or NAME.tar.gz/.tgz (docker archive), or - (a docker archive on stdout)' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l format -d 'Output format [default: docker-archive for a PATH ending in .tar, else oci]' -r -f -a "oci\t'An OCI image layout directory'
docker-archive\t'A tarball that `docker load` and `podman load` accept (one platform)'"
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l platform -d 'Only this platform, e.g. linux/arm64 or linux/arm/v7 [docker-archive default: the host\'s]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -s j -l jobs -d 'Blobs downloaded in parallel when the image has to be pinned first' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand pull" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand list" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand evict" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l grace -d 'On a shared store: keep unreached blobs younger than this (a pin in flight in another process may not have recorded them yet), and abort multipart uploads older than it' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l dry-run -d 'Only report what would be removed'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand gc" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l repair -d 'Rebuild the index from the journal and remove corrupt blobs (pin fetches them again)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand verify" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l listen -d 'Address to listen on (use 0.0.0.0:5000 for all interfaces)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l allow -d 'A registry clients may reach through the mirror (repeatable) [default: docker.io, ghcr.io, quay.io, registry.k8s.io, gcr.io, public.ecr.aws, nvcr.io]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l admin-token -d 'Token for the admin API (pin, list, evict, gc, verify over HTTP) [default: random, written to the store\'s server.json for local commands]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -s j -l jobs -d 'Blobs downloaded in parallel per pull-through pin' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l refresh -d 'With an s3:// store: how often the records this replica has cached are checked against the bucket (an evict anywhere is honoured within this)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l drift-every -d 'Run `drift` on the store this often (e.g. 10m) and export the result in /metrics [default: off]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l dashboard -d 'The web dashboard at /: read-only pages for anyone (public), only after signing in with the admin token (private), or none (off); evict, pin and gc always need sign-in' -r -f -a "public\t''
private\t''
off\t''"
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l read-only -d 'Serve what is pinned and never write the store (misses answer 503); works on a store this process may not write'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l redirect -d 'With an s3:// store: answer blob GETs with a 307 to a presigned URL of the bucket\'s object, so that clients read the bucket directly'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand serve" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l to -d 'The shared store to copy into: s3://BUCKET[/PREFIX] (the AWS_* variables reach it)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -s j -l jobs -d 'Blobs uploaded in parallel' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand migrate" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand history" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l mirror -d 'Write references as pulled through this mirror: HOST[:PORT]/library/ubuntu:20.04@…' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l diff -d 'Print the change as a unified diff and write no file (references are still pinned)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l check -d 'Change nothing (pin nothing, write nothing): exit 1 with the diff when a reference is not locked, or is locked to another digest than the store\'s pin'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l dated -d 'Write each unlocked tag\'s most specific twin (`twins`) instead: ubuntu:20.04 → ubuntu:focal-20230801@sha256:…'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand lock" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l exit-code -d 'Exit 1 when a tag moved, is gone, or could not be checked'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand drift" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand twins" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l config -d 'Read settings from this TOML file: its keys are the long flags of serve and the global flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…"); flags and environment variables win over it. There is no default file; `stablebuild config` shows the settings in effect and where each came from' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l store -d 'The store: a directory, or a bucket on S3-compatible storage shared by any number of processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables) [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l cache -d 'With an s3:// store: this process\'s cache of it (verified blobs, the records seen) [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]' -r -F
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l cache-size -d 'With an s3:// store: the most the cache\'s blobs may take, e.g. 50GiB, 800M or 40% (of the cache\'s filesystem); the least recently used leave first [default: 25%]' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l upstream -d 'Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable; the variable takes a comma-separated list)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l insecure-registry -d 'Reach this registry without verifying its certificate, or over plain http when it does not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l server -d 'Run pin, list, evict, gc, verify, history and drift through this stablebuild server (default: the server holding --store, if one is running)' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l token -d 'The server\'s admin token, for --server' -r
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l json -d 'Print results as one JSON document'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -l no-wait -d 'Fail at once when another stablebuild process holds the store, instead of waiting'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -s v -l verbose -d 'More log output on stderr (-v: info, rate-limit budgets; -vv: debug)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand config" -s h -l help -d 'Print help'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "pin" -d 'Snapshot tags into the store (all platforms, all blobs); pinned tags are not fetched again'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "pull" -d 'Export an image from the store (pinning it first when missing)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "list" -d 'Show what is pinned'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "evict" -d 'Drop tags\' snapshots so that the next pin fetches them again'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "gc" -d 'Remove blobs that no pinned tag reaches'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "verify" -d 'Re-hash every blob and report missing or corrupt ones (exit 1 if any)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "serve" -d 'Serve the store as a read-only Registry v2 mirror, pinning on a miss'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "inspect" -d 'Show a pinned snapshot as a tree: index, platform manifests, configs and layers (from the store only)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "migrate" -d 'Copy a local store\'s pinned tags, verified, into a bucket (resumable; nothing is fetched from the upstream)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "history" -d 'Every pin and evict the store has seen, oldest first, with time, digest and origin'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "lock" -d 'Pin what Dockerfiles and YAML files use and rewrite each reference in place to NAME:TAG@sha256:ROOT (the index digest: every platform)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "drift" -d 'Compare every pinned tag with the upstream, HEAD requests only: same, moved, gone or error (the store is not changed)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "twins" -d 'Tags of IMAGE\'s repository that share its digest, most specific first (HEAD requests only)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "config" -d 'Print every global and serve setting in effect and where it came from: a flag, the environment, the config file (--config) or the default (secrets show as <set>)'
complete -c stablebuild -n "__fish_stablebuild_using_subcommand help; and not __fish_seen_subcommand_from pin pull list evict gc verify serve inspect migrate history lock drift twins config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
