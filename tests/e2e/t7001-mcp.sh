#!/usr/bin/env bash
# MCP (Model Context Protocol, Streamable HTTP) at /mcp: initialize,
# tools/list, tools/call search and get_document over real HTTP with curl,
# JSON-RPC errors for bad input, notifications accepted with 202, the API's
# key and Origin rules; then one session of the official MCP TypeScript SDK
# client (npm @modelcontextprotocol/sdk) against the same server.
. "$SAGE_TOP/tests/lib/tap.sh"
. "$SAGE_TOP/tests/lib/searchd.sh"
KEY=t7001-key
IX=$T_ROOT/ix
mkdir -p "$IX"
sage-indexer build -q --out "$IX/sample.sage" --library kestrel="$SAGE_TOP/datasets/sample/kestrel" \
    --library notes="$SAGE_TOP/datasets/sample/notes" 2>/dev/null || { echo "Bail out! build"; exit 1; }
sd_start "$T_ROOT/sd" "$IX" --api-keys "$KEY" --cors-origin https://docs.example ||
    { echo "Bail out! searchd"; exit 1; }

# rpc BODY: POSTs one JSON-RPC message with the key; the answer to out.json,
# the HTTP status printed.
rpc() {
    curl -s -o out.json -w '%{http_code}' -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        --data-binary "$1" "$SD_URL/mcp"
}

t_ok 'initialize: protocol version, tools capability, server info' '
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-03-26\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}")" = 200 ] &&
    jq -e ".id == 1 and .result.protocolVersion == \"2025-03-26\" and .result.capabilities.tools and
           .result.serverInfo.name == \"sage-searchd\"" out.json &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"1999-01-01\"}}")" = 200 ] &&
    jq -e ".result.protocolVersion == \"2025-06-18\"" out.json &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}")" = 202 ] &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}")" = 200 ] && jq -e ".id == \"p\" and .result == {}" out.json'

t_ok 'tools/list names search and get_document with their input schemas' '
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\"}")" = 200 ] &&
    jq -e "[.result.tools[].name] == [\"search\", \"get_document\"]" out.json &&
    jq -e ".result.tools[0].inputSchema | .required == [\"query\"] and .properties.k.maximum == 50" out.json &&
    jq -e ".result.tools[1].inputSchema.required == [\"id\"]" out.json'

t_ok 'tools/call search returns paths, headings and snippets; get_document the whole text' '
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"search\",\"arguments\":{\"query\":\"restore from a snapshot\",\"k\":2}}}")" = 200 ] &&
    jq -e ".result.isError == false and .result.content[0].type == \"text\"" out.json &&
    jq -r ".result.content[0].text" out.json >search.txt && cat search.txt &&
    grep -q "^1\. kestrel:ops/backup.md > Backup and restore" search.txt &&
    doc=$(sed -n "s/^1\..*\[doc \([0-9]*\),.*/\1/p" search.txt) && [ -n "$doc" ] &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"get_document\",\"arguments\":{\"id\":$doc}}}")" = 200 ] &&
    jq -r ".result.content[0].text" out.json >doc.txt &&
    grep -q "^# Backup and restore" doc.txt && grep -q "kestrel snapshot restore" doc.txt &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":\"search\",\"arguments\":{\"query\":\"snapshot\",\"library\":\"notes\"}}}")" = 200 ] &&
    jq -r ".result.content[0].text" out.json >notes.txt && ! grep -q "kestrel:" notes.txt'

t_ok 'bad input: JSON-RPC errors, tool failures as isError results' '
    [ "$(rpc "not json")" = 200 ] && jq -e ".id == null and .error.code == -32700" out.json &&
    [ "$(rpc "[]")" = 200 ] && jq -e ".error.code == -32600" out.json &&
    [ "$(rpc "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}")" = 200 ] && jq -e ".error.code == -32600" out.json &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}")" = 200 ] && jq -e ".error.code == -32601" out.json &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"search\",\"arguments\":{\"k\":2}}}")" = 200 ] &&
    jq -e ".id == 1 and .error.code == -32602" out.json &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"search\",\"arguments\":{\"query\":\"x\",\"k\":500}}}")" = 200 ] &&
    jq -e ".error.code == -32602" out.json &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"rm\",\"arguments\":{}}}")" = 200 ] &&
    jq -e ".error.code == -32602" out.json &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get_document\",\"arguments\":{\"id\":99999}}}")" = 200 ] &&
    jq -e ".result.isError == true and (.result.content[0].text | test(\"no document\"))" out.json &&
    [ "$(rpc "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"search\",\"arguments\":{\"query\":\"x\",\"mode\":\"dense\"}}}")" = 200 ] &&
    jq -e ".result.isError == true" out.json &&
    [ "$(curl -s -o out.json -w "%{http_code}" -H "Authorization: Bearer $KEY" "$SD_URL/mcp")" = 405 ]'

t_ok 'the API key and the Origin rules apply' '
    [ "$(curl -s -o out.json -w "%{http_code}" --data-binary "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}" "$SD_URL/mcp")" = 401 ] &&
    [ "$(curl -s -o out.json -w "%{http_code}" -H "Authorization: Bearer $KEY" -H "Origin: http://evil.example" \
          --data-binary "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}" "$SD_URL/mcp")" = 403 ] &&
    [ "$(curl -s -o out.json -w "%{http_code}" -H "Authorization: Bearer $KEY" -H "Origin: https://docs.example" \
          --data-binary "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}" "$SD_URL/mcp")" = 200 ]'

t_ok 'the official MCP SDK client: connect, list tools, search, get a document' '
    node "$SAGE_TOP/tests/lib/mcp-client.mjs" "$SD_URL/mcp" "rotate TLS certificates" "$KEY" >sdk.json &&
    jq -e ".server.name == \"sage-searchd\" and .tools == [\"search\", \"get_document\"] and
           .isError == false" sdk.json &&
    jq -e "(.search | test(\"guide/security.md\")) and (.document | test(\"^# \"))" sdk.json'

t_ok 'MCP requests are counted in /metrics' '
    curl -sf -H "Authorization: Bearer $KEY" "$SD_URL/metrics" >metrics &&
    grep -q "^sage_requests_total{route=\"mcp\",status=\"200\"} [1-9]" metrics'

t_done
