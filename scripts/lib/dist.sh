# shellcheck shell=bash
# Transports for scripts/publish and scripts/fetch-index (sourced). A place
# is a local directory, an rsync destination (HOST:PATH/ over ssh, or
# rsync://HOST[:PORT]/MODULE/PATH/) or an S3 prefix (s3://BUCKET/PREFIX/,
# through the aws CLI; S3_ENDPOINT, when set, is passed as --endpoint-url).
# Every function takes the place first, normalized by dist_dir to end in /.
# Uploads are atomic under their final name: rsync and S3 write elsewhere
# and rename or commit at the end, and a local copy goes through a dot file.
# rsync always runs with --ignore-times: its quick check (same size, same
# second) would skip a new manifest of the length of the old one.

S3_ENDPOINT=${S3_ENDPOINT:-}
RSYNC_OPTS=${SAGE_RSYNC_OPTS:-}

dist_kind() {
    case $1 in
        s3://*) echo s3 ;;
        rsync://*) echo rsync ;;
        /*|./*|../*) echo dir ;;
        *:*) echo rsync ;;
        *) echo dir ;;
    esac
}

dist_dir() {
    case $1 in
        */) printf '%s\n' "$1" ;;
        *) printf '%s/\n' "$1" ;;
    esac
}

# dist_generation NAME FILE: prints the generation of FILE (a path or a
# name) when it is one of NAME's published files (NAME.GEN.sage or its
# .sha256); fails otherwise.
dist_generation() {
    local re="^$1\\.([0-9]{6,})\\.sage(\\.sha256)?$"
    [[ ${2##*/} =~ $re ]] || return 1
    echo $((10#${BASH_REMATCH[1]}))
}

dist_check_name() {
    [[ $1 =~ ^[A-Za-z0-9_-]+$ ]]
}

dist_need_tools() {
    local t
    case $(dist_kind "$1") in
        s3) t=aws ;;
        rsync) t=rsync ;;
        dir) return 0 ;;
    esac
    command -v "$t" >/dev/null || { echo "'$t' is needed for $1 and not installed" >&2; return 1; }
}

_aws() {
    # shellcheck disable=SC2086
    aws ${S3_ENDPOINT:+--endpoint-url "$S3_ENDPOINT"} "$@"
}

_rsync() {
    # shellcheck disable=SC2086
    rsync $RSYNC_OPTS "$@"
}

# dist_get PLACE NAME LOCAL: copies PLACE/NAME to LOCAL.
dist_get() {
    case $(dist_kind "$1") in
        s3) _aws s3 cp --only-show-errors "$1$2" "$3" ;;
        rsync) _rsync -q "$1$2" "$3" ;;
        dir) cp -- "$1$2" "$3" ;;
    esac
}

# dist_fetch PLACE NAME PART: like dist_get for a large file; an existing
# PART is a basis that rsync updates in place (delta transfer), so a copy of
# the previous generation there, or the leftovers of an interrupted run,
# save bytes. rsync checks the whole file's checksum at the end.
dist_fetch() {
    case $(dist_kind "$1") in
        s3) _aws s3 cp --only-show-errors "$1$2" "$3" ;;
        rsync) _rsync -q -I --inplace --partial --no-whole-file "$1$2" "$3" ;;
        dir) cp -- "$1$2" "$3" ;;
    esac
}

# dist_put PLACE LOCAL NAME: uploads LOCAL as PLACE/NAME.
dist_put() {
    case $(dist_kind "$1") in
        s3) _aws s3 cp --only-show-errors "$2" "$1$3" ;;
        rsync) _rsync -q -I "$2" "$1$3" ;;
        dir)
            mkdir -p -- "$1" &&
                cp -- "$2" "$1.$3.publish.$$" && mv -f -- "$1.$3.publish.$$" "$1$3" ;;
    esac
}

# dist_list PLACE: the names of the files directly in PLACE, one a line.
dist_list() {
    case $(dist_kind "$1") in
        s3) _aws s3 ls "$1" | awk '$1 != "PRE" { print $4 }' ;;
        rsync) _rsync --list-only "$1" | awk '$1 ~ /^-/ { print $5 }' ;;
        dir) find "$1" -mindepth 1 -maxdepth 1 -type f -printf '%f\n' ;;
    esac
}

# dist_rm PLACE NAME: deletes PLACE/NAME.
dist_rm() {
    case $(dist_kind "$1") in
        s3) _aws s3 rm --only-show-errors "$1$2" ;;
        rsync)
            # rsync deletes only by syncing a directory: an empty one, with
            # every name but NAME excluded
            local empty rc
            empty=$(mktemp -d "${TMPDIR:-/tmp}/sage-dist.XXXXXX") || return 1
            _rsync -r --delete --include="/$2" --exclude='*' "$empty/" "$1"
            rc=$?
            rmdir -- "$empty"
            return $rc ;;
        dir) rm -f -- "$1$2" ;;
    esac
}
