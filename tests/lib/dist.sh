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
export RS_PID='' RS_URL='' S3_PID='' S3_URL=''
DAEMON_PID='' DAEMON_PORT='' PORT=''

# A TCP port free on 127.0.0.1 now (the server that takes it may lose a race;
# callers retry).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Succeeds once something accepts connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_on_free_port DIR TAG LAUNCH: runs "LAUNCH DIR PORT" (a function
# that execs the server on 127.0.0.1:PORT) in the background, as a daemon of
# the test, until one accepts connections; up to five free ports are tried.
# Sets DAEMON_PID and DAEMON_PORT; the output goes to DIR/TAG.out.
start_on_free_port() {
    local dir=$1 tag=$2 launch=$3 try
    for try in 1 2 3 4 5; do
        PORT=$(free_port) || return 1
        "$launch" "$dir" "$PORT" </dev/null >>"$dir/$tag.out" 2>&1 &
        DAEMON_PID=$!
        t_daemon "$DAEMON_PID"
        if t_wait "$DIST_DEADLINE" daemon_settled "$PORT" "$DAEMON_PID" &&
           kill -0 "$DAEMON_PID" 2>/dev/null; then
            DAEMON_PORT=$PORT
            return 0
        fi
        echo "$tag on port $PORT did not start (try $try):"
        cat "$dir/$tag.out"
    done
    return 1
}

daemon_settled() {
    port_open "$1" || ! kill -0 "$2" 2>/dev/null
}

launch_rsyncd() {
    exec rsync --daemon --no-detach --address=127.0.0.1 --port="$2" --config="$1/rsyncd.conf"
}

launch_s3rver() {
    exec "$SAGE_TOP/tests/lib/node/node_modules/.bin/s3rver" --directory "$1/s3" \
        --address 127.0.0.1 --port "$2" --configure-bucket sage --silent
}

rsyncd_start() {
    local dir=$1
    mkdir -p "$dir/pub" || return 1
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
    start_on_free_port "$dir" rsyncd launch_rsyncd || return 1
    RS_PID=$DAEMON_PID
    RS_URL="rsync://127.0.0.1:$DAEMON_PORT/pub/"
}

s3_start() {
    local dir=$1 bin=$SAGE_TOP/tests/lib/node/node_modules/.bin/s3rver
    [ -x "$bin" ] || { echo "s3rver is not installed ($bin): run scripts/install-deps.sh"; return 1; }
    mkdir -p "$dir/s3" || return 1
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    start_on_free_port "$dir" s3rver launch_s3rver || return 1
    S3_PID=$DAEMON_PID
    S3_URL="http://127.0.0.1:$DAEMON_PORT"
}
