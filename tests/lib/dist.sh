# shellcheck shell=bash
# Servers for the distribution tests (sourced after tap.sh), on 127.0.0.1
# only, started and ended by the test:
#   rsyncd_start DIR    an rsync daemon serving DIR/pub read-write as module
#                       "pub"; sets RS_PID and RS_URL (rsync://127.0.0.1:PORT/pub/)
#   s3_start DIR        an S3-compatible server (s3rver from npm) keeping its
#                       data in DIR/s3 with a bucket "sage"; sets S3_PID,
#                       S3_URL (its endpoint) and the AWS_* variables the aws
#                       CLI reads

: "${DIST_DEADLINE:=20}"
RS_PID='' RS_URL='' S3_PID='' S3_URL=''

# A TCP port free on 127.0.0.1 now (the server that takes it may lose a race;
# callers retry).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Succeeds once something accepts connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

rsyncd_start() {
    local dir=$1 port try
    mkdir -p "$dir/pub" || return 1
    for try in 1 2 3 4 5; do
        port=$(free_port) || return 1
        cat >"$dir/rsyncd.conf" <<CONF
use chroot = no
uid = $(id -u)
gid = $(id -g)
max connections = 8
log file = $dir/rsyncd.log
[pub]
    path = $dir/pub
    read only = no
CONF
        rsync --daemon --no-detach --address=127.0.0.1 --port="$port" --config="$dir/rsyncd.conf" \
            </dev/null >>"$dir/rsyncd.out" 2>&1 &
        RS_PID=$!
        t_daemon "$RS_PID"
        if t_wait "$DIST_DEADLINE" rsyncd_settled "$port" "$RS_PID" && kill -0 "$RS_PID" 2>/dev/null; then
            RS_URL="rsync://127.0.0.1:$port/pub/"
            return 0
        fi
        echo "rsync daemon on port $port did not start (try $try):"
        cat "$dir/rsyncd.out" "$dir/rsyncd.log" 2>/dev/null
    done
    return 1
}

rsyncd_settled() {
    port_open "$1" || ! kill -0 "$2" 2>/dev/null
}

s3_start() {
    local dir=$1 port try bin=$SAGE_TOP/tests/lib/node/node_modules/.bin/s3rver
    [ -x "$bin" ] || { echo "s3rver is not installed ($bin): run scripts/install-deps.sh"; return 1; }
    mkdir -p "$dir/s3" || return 1
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    for try in 1 2 3 4 5; do
        port=$(free_port) || return 1
        "$bin" --directory "$dir/s3" --address 127.0.0.1 --port "$port" --configure-bucket sage \
            --silent </dev/null >>"$dir/s3rver.out" 2>&1 &
        S3_PID=$!
        t_daemon "$S3_PID"
        if t_wait "$DIST_DEADLINE" rsyncd_settled "$port" "$S3_PID" && kill -0 "$S3_PID" 2>/dev/null; then
            S3_URL="http://127.0.0.1:$port"
            return 0
        fi
        echo "s3rver on port $port did not start (try $try):"
        cat "$dir/s3rver.out"
    done
    return 1
}
