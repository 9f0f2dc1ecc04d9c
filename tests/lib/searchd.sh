# sage-searchd helpers for the end-to-end tests (sourced after tap.sh).
#   sd_start DIR INDEX-DIR [ARGS...]  starts searchd on 127.0.0.1:0 with its log,
#                                     port file and pid in DIR; sets SD_PID,
#                                     SD_PORT, SD_URL (http or https) and SD_DIR
#   sd_stop                           SIGTERM, waits for the exit, returns its status
#   sd_call FILE PATH [CURL-ARGS...]  body to FILE, headers to FILE.h, prints the status
#   sd_expect STATUS FILE PATH [...]  sd_call, failing unless the status is STATUS
#   sd_error STATUS CODE PATH [...]   expects a JSON {"error":{"code","message"}} body
# A daemon may be started at the top level or inside a t_ok body: t_daemon
# (tap.sh) notes its PID where the exit trap finds it.
# Waits poll with a deadline (SD_DEADLINE seconds, longer under sanitizers).

: "${SD_DEADLINE:=20}"
SD_PID='' SD_PORT='' SD_URL='' SD_DIR=''

sd_start() {
    local dir=$1 ix=$2 scheme=http a
    shift 2
    for a in "$@"; do
        [ "$a" = --tls-cert ] && scheme=https
    done
    mkdir -p "$dir" && rm -f "$dir/port" || return 1
    sage-searchd --index-dir "$ix" --listen 127.0.0.1:0 --port-file "$dir/port" "$@" \
        </dev/null >"$dir/searchd.out" 2>"$dir/searchd.log" &
    SD_PID=$!
    SD_DIR=$dir
    echo "$SD_PID" >"$dir/searchd.pid"
    t_daemon "$SD_PID"
    t_await_port "$SD_DEADLINE" "$dir/port" "$SD_PID" "$dir/searchd.log" || return 1
    SD_PORT=$(cat "$dir/port")
    SD_URL="$scheme://127.0.0.1:$SD_PORT"
}

# Stops the daemon of the last sd_start in this shell; returns its exit
# status (the daemon must be a child of this shell, as sd_start makes it).
sd_stop() {
    t_stop "${1:-$SD_PID}" "$SD_DEADLINE"
}

sd_call() {
    local f=$1 p=$2
    shift 2
    curl -sS --max-time 10 -o "$f" -D "$f.h" -w '%{http_code}' "$@" "$SD_URL$p"
}

sd_expect() {
    local want=$1 f=$2 p=$3 got
    shift 3
    got=$(sd_call "$f" "$p" "$@") || { echo "curl failed on $p"; return 1; }
    [ "$got" = "$want" ] || { echo "expected $want, got $got from $p"; cat "$f"; echo; return 1; }
}

# The body is in err.json, its headers in err.json.h.
sd_error() {
    local want=$1 code=$2 p=$3
    shift 3
    sd_expect "$want" err.json "$p" "$@" &&
    grep -qi '^content-type: application/json' err.json.h &&
    jq -e --arg c "$code" '(keys == ["error"]) and (.error | keys == ["code", "message"]) and
        .error.code == $c and (.error.message | type == "string" and length > 0)' err.json \
        >/dev/null || { echo "bad error body for $p (want $code):"; cat err.json; echo; return 1; }
}

# The value of header $2 (case-insensitive) in headers file $1.
sd_header() {
    sed -n "s/^$2: *//Ip" "$1" | tr -d '\r' | head -n 1
}
