#!/usr/bin/env bash
# The deployment files (scripts/deploy): YAML passes yamllint, Kubernetes
# manifests pass the API schemas (kubernetes-models from npm), the systemd
# units pass systemd-analyze, the runtime image installs the Debian package
# of every library the two programs link, and every metric the alert rules
# and the Grafana dashboard name is one searchd exposes; docs/operations.md
# carries the --help of every program and script as they are.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/searchd.sh"
D=$SAGE_TOP/scripts/deploy

t_ok 'yamllint: compose, Kubernetes and alert rules' '
    yamllint -c "$D/.yamllint" "$D"/docker-compose.yml "$D"/k8s/*.yaml "$D"/monitoring/*.yml'

t_ok 'Kubernetes manifests pass the API schemas; a broken one does not' '
    node "$SAGE_TOP/tests/lib/k8s-validate.js" "$D"/k8s/*.yaml >out && cat out &&
    [ "$(grep -c "^ok " out)" -ge 6 ] &&
    sed "s/  replicas: 2/  replicas: \"two\"/" "$D/k8s/searchd.yaml" >bad.yaml &&
    ! node "$SAGE_TOP/tests/lib/k8s-validate.js" bad.yaml >out && grep -q "replicas must be integer" out &&
    sed "s/^kind: Deployment/kind: Deploymint/" "$D/k8s/searchd.yaml" >bad.yaml &&
    ! node "$SAGE_TOP/tests/lib/k8s-validate.js" bad.yaml >out && grep -q "unknown kind" out'

t_ok 'systemd units pass systemd-analyze verify' '
    mkdir -p root/usr/local/bin root/usr/local/lib/sage units &&
    for u in "$D"/systemd/*; do
        sed -e "s|/usr/local/bin/|$PWD/root/usr/local/bin/|" \
            -e "s|/usr/local/lib/sage/|$PWD/root/usr/local/lib/sage/|" \
            -e "/^Documentation=/d" "$u" >"units/${u##*/}"
    done &&
    cp "$SAGE_BUILD/sage-searchd" root/usr/local/bin/ && cp "$SAGE_TOP/scripts/fetch-index" root/usr/local/lib/sage/ &&
    SYSTEMD_LOG_LEVEL=warning systemd-analyze verify units/*.service units/*.timer 2>err &&
    cat err && [ ! -s err ]'

# The Debian packages holding the libraries binary $1 links directly.
linked_packages() {
    local lib path
    for lib in $(readelf -d "$1" | sed -n "s/.*(NEEDED).*\[\(.*\)\]/\1/p"); do
        path=$(ldd "$1" | awk -v l="$lib" '$1 == l { print $3 }')
        [ -n "$path" ] || { echo "unresolved $lib" >&2; return 1; }
        { dpkg -S "$path" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null || dpkg -S "${path#/usr}"; } |
            head -n 1 | cut -d: -f1
    done
}

t_ok 'the runtime image installs every library the programs link' '
    { linked_packages "$SAGE_BUILD/sage-searchd" && linked_packages "$SAGE_BUILD/sage-indexer"; } |
        sort -u >needed && [ "$(wc -l <needed)" -gt 10 ] &&
    sed -n "/^FROM debian:12-slim/,\$p" "$D/Dockerfile" >runtime &&
    missing=$(while read -r p; do
                  case $p in libc6|libasan*|libubsan*|liblsan*) continue ;; esac   # libc; sanitizer builds
                  grep -qw -- "$p" runtime || echo "$p"
              done <needed) &&
    { [ -z "$missing" ] || { echo "not in the runtime stage: $missing"; false; }; }'

t_ok 'every metric the alert rules and the dashboard name is exposed' '
    mkdir c ix && printf "# Title\n\nsome words\n" >c/a.md &&
    sage-indexer build -q --build-time 1700000000 --out ix/docs.sage c &&
    sd_start sd ix && curl -sf "$SD_URL/v1/search?q=words" >/dev/null &&
    curl -sf "$SD_URL/metrics" >metrics && sd_stop &&
    grep -oh "sage_[a-z_]*" "$D/monitoring/sage-alerts.yml" "$D/monitoring/sage-dashboard.json" |
        sort -u >named && [ "$(wc -l <named)" -ge 8 ] &&
    missing=$(while read -r m; do grep -q "^$m[{ ]" metrics || echo "$m"; done <named) &&
    { [ -z "$missing" ] || { echo "not in /metrics: $missing"; false; }; } &&
    grep -q "^sage_index_build_timestamp_seconds{index=\"docs\"} 1700000000$" metrics'

t_ok 'docs/operations.md lists every flag and variable as the programs do' '
    "$D/gen-reference.sh" "$SAGE_BUILD" >ref.md &&
    sed -n "/^## Reference: every flag and variable/,\$p" "$SAGE_TOP/docs/operations.md" >doc.md &&
    diff -u ref.md doc.md'

t_done
