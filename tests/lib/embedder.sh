# shellcheck shell=bash
# The local embedding server (scripts/embedder) for the end-to-end tests
# (sourced after tap.sh):
#   emb_start DIR [ARGS...]   starts it on 127.0.0.1:0 with its log and port
#                             file in DIR; sets EMB_PID, EMB_URL
#   emb_stop                  SIGTERM, waits, returns its exit status
# The model loads in about a second (more under load): waits allow for it.

: "${EMB_DEADLINE:=60}"
EMB_PID='' EMB_URL=''
EMB_MODEL=universal-sentence-encoder-lite

emb_start() {
    local dir=$1
    shift
    mkdir -p "$dir" && rm -f "$dir/port" || return 1
    node "$SAGE_TOP/scripts/embedder/server.js" --port-file "$dir/port" --idle-timeout 300 "$@" \
        </dev/null >"$dir/embedder.out" 2>"$dir/embedder.log" &
    EMB_PID=$!
    t_daemon "$EMB_PID"
    t_await_port "$EMB_DEADLINE" "$dir/port" "$EMB_PID" "$dir/embedder.log" || return 1
    EMB_URL="http://127.0.0.1:$(cat "$dir/port")"
}

emb_stop() {
    t_stop "$EMB_PID" "$EMB_DEADLINE"
}
