// One session of the official MCP TypeScript SDK's client against sage-searchd:
// connect (initialize), list the tools, call search with the query given,
// then get_document for the first hit. Prints one JSON line of what it saw;
// exits 1 on any failure.
//   node mcp-client.mjs URL QUERY [BEARER-KEY]
import { Client } from './node/node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js';
import { StreamableHTTPClientTransport } from
    './node/node_modules/@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js';

const [url, query, key] = process.argv.slice(2);
const opts = key ? { requestInit: { headers: { Authorization: `Bearer ${key}` } } } : {};
const transport = new StreamableHTTPClientTransport(new URL(url), opts);
const client = new Client({ name: 'sage-test', version: '1.0.0' });
try {
    await client.connect(transport);
    const tools = await client.listTools();
    const found = await client.callTool({ name: 'search', arguments: { query, k: 3 } });
    const text = found.content[0].text;
    const m = /\[doc (\d+),/.exec(text);
    const doc = m ? await client.callTool({ name: 'get_document', arguments: { id: Number(m[1]) } })
                  : null;
    console.log(JSON.stringify({
        server: client.getServerVersion(),
        tools: tools.tools.map((t) => t.name),
        search: text,
        document: doc ? doc.content[0].text.slice(0, 2000) : null,
        isError: found.isError,
    }));
    await client.close();
} catch (e) {
    console.error(`mcp-client: ${e.message}`);
    process.exit(1);
}
