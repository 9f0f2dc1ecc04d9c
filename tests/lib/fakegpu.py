#!/usr/bin/env python3
"""A fake remote-GPU server for the tests: OpenAI-compatible embeddings and a
vision "OCR" endpoint, with counters and injectable faults. Python stdlib only.

  fakegpu.py --port-file FILE [--dim 64] [--model NAME] [--api-key KEY]
             [--idle-timeout S] [--log FILE] [--ocr-text TEXT] [--ocr-map FILE]
             [fault options, as in POST /_faults below]

Binds 127.0.0.1 on port 0 (or --port), writes the port to FILE (atomically),
serves HTTP/1.1 with keep-alive, and exits 0 on SIGTERM or SIGINT, or after
--idle-timeout seconds without a request (so it can never outlive a test).

POST /v1/embeddings   {"model", "input": "text" | ["text", ...]}
    Vectors are deterministic: character 3-grams of the input (padded with a
    space each side) are hashed (CRC-32) into DIM buckets with a hashed sign,
    then L2-normalized, so similar texts get similar vectors. The answer is
    {"object":"list","data":[{"object":"embedding","index":i,"embedding":[..]}],
     "model","usage":{"prompt_tokens","total_tokens"}}; tokens are estimated as
    ceil(bytes/4) per input, the same estimate the client uses.
POST /v1/chat/completions   an OpenAI vision message whose content holds an
    {"type":"image_url","image_url":{"url":"data:image/png;base64,..."}}.
    The image must decode to PNG bytes (else 400). The answer's text is the
    --ocr-map entry for the SHA-256 (hex) of those bytes (the map is a JSON
    object {sha256: text}), else --ocr-text (default "fake ocr text").
GET /_stats    {"requests", "inputs" (inputs received in embedding requests),
    "embedded" (inputs answered with a 200), "ocr_pages", "dropped",
    "status": {"200": n, ...}, "max_batch", "max_batch_tokens",
    "auth": last Authorization header seen (or null), "last_input": the first
    input of the last embedding request,
    "served": {sha256(input text): times answered with a 200},
    "ocr_served": {sha256(PNG bytes): times answered with a 200},
    "ocr_last": {"model", "max_tokens", "prompt"} of the last OCR request, "faults": {...}}
POST /_faults  a JSON object merged into the fault settings; GET /_faults shows them.
POST /_reset   zeroes the counters.

Faults (flags use dashes: --error-rate 0.3), applied to /v1/* in this order:
  latency_ms, jitter_ms   sleep latency_ms + uniform(0, jitter_ms) first
  drop_rate               close the connection without an answer
  fail_next               the next N requests fail (then the error rate applies)
  error_rate              fraction of requests answered with an error status
  error_statuses          list chosen from uniformly (default [503])
  retry_after             seconds, sent as Retry-After with 429 and 503 (null: none)
  max_inputs, max_tokens  batches over either are refused with 413 (as TEI does)
  wrong_dim               answer vectors of this dimension instead (null: off)
  malformed               answer 200 with a truncated JSON body
  scale                   multiply every vector by this (1.0: unit length)
  constant                every vector is the same one, made once, and "served"
                          is not kept: the server's own work stays small next to
                          the added latency (benchmarks of the client)
  ocr_format              how OCR text is wrapped, as olmOCR versions do: "plain",
                          "json" ({"natural_text": TEXT, ...}) or "yaml" (front matter)
  seed                    seeds the fault decisions (default 1)
With --api-key, a request without "Authorization: Bearer KEY" gets 401.
"""
import argparse
import base64
import binascii
import hashlib
import http.server
import json
import math
import os
import random
import signal
import socket
import sys
import threading
import time
import zlib

FAULT_DEFAULTS = {
    "latency_ms": 0, "jitter_ms": 0, "drop_rate": 0.0, "fail_next": 0,
    "error_rate": 0.0, "error_statuses": [503], "retry_after": None,
    "max_inputs": None, "max_tokens": None, "wrong_dim": None,
    "malformed": False, "scale": 1.0, "constant": False, "ocr_format": "plain", "seed": 1,
}
MAX_BODY = 64 << 20


def est_tokens(text):
    n = len(text.encode("utf-8"))
    return (n + 3) // 4


def embed(text, dim):
    v = [0.0] * dim
    t = " " + text + " "
    for i in range(max(1, len(t) - 2)):
        h = zlib.crc32(t[i:i + 3].encode("utf-8"))
        v[h % dim] += 1.0 if (h >> 31) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else v


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.dim = args.dim
        self.model = args.model
        self.api_key = args.api_key
        self.ocr_text = args.ocr_text
        self.ocr_map = {}
        if args.ocr_map:
            with open(args.ocr_map, encoding="utf-8") as f:
                self.ocr_map = json.load(f)
        self.faults = dict(FAULT_DEFAULTS)
        for k in FAULT_DEFAULTS:
            v = getattr(args, k)
            if v is not None:
                self.faults[k] = v
        self.rng = random.Random(self.faults["seed"])
        self.last = time.monotonic()
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None
        self.reset()

    def reset(self):
        self.stats = {"requests": 0, "inputs": 0, "embedded": 0, "ocr_pages": 0,
                      "dropped": 0, "status": {}, "max_batch": 0,
                      "max_batch_tokens": 0, "auth": None, "last_input": None,
                      "served": {}, "ocr_served": {}, "ocr_last": None}

    def set_faults(self, d):
        unknown = set(d) - set(FAULT_DEFAULTS)
        if unknown:
            raise ValueError("unknown fault settings: " + ", ".join(sorted(unknown)))
        self.faults.update(d)
        if "seed" in d:
            self.rng = random.Random(d["seed"])

    def note(self, msg):
        if self.log:
            self.log.write(msg + "\n")
            self.log.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakegpu/1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's
        # algorithm holds the body until the client's delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        self.server.state.note("%s %s" % (self.address_string(), fmt % args))

    # ---- plumbing ----
    def reply(self, status, body, headers=None, count=True):
        st = self.server.state
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if count:
            with st.lock:
                s = st.stats["status"]
                s[str(status)] = s.get(str(status), 0) + 1

    def error(self, status, msg, headers=None):
        self.reply(status, {"error": {"message": msg, "type": "fake_error", "code": status}},
                   headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def drop(self):
        with self.server.state.lock:
            self.server.state.stats["dropped"] += 1
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- faults shared by /v1/* ----
    def faults_first(self):
        """Applies auth, latency, drops and errors; True when it answered."""
        st = self.server.state
        with st.lock:
            st.stats["requests"] += 1
            st.stats["auth"] = self.headers.get("Authorization")
            f = dict(st.faults)
            delay = f["latency_ms"] + st.rng.uniform(0, f["jitter_ms"])
            drop = st.rng.random() < f["drop_rate"]
            if st.faults["fail_next"] > 0:
                st.faults["fail_next"] -= 1
                err = True
            else:
                err = st.rng.random() < f["error_rate"]
            status = st.rng.choice(f["error_statuses"] or [503])
        if st.api_key is not None and self.headers.get("Authorization") != "Bearer " + st.api_key:
            self.error(401, "invalid api key")
            return True
        if delay > 0:
            time.sleep(delay / 1000.0)
        if drop:
            self.drop()
            return True
        if err:
            h = {}
            if status in (429, 503) and f["retry_after"] is not None:
                h["Retry-After"] = str(f["retry_after"])
            self.error(status, "injected fault %d" % status, h)
            return True
        return False

    # ---- routes ----
    def do_GET(self):
        st = self.server.state
        st.last = time.monotonic()
        if self.path == "/_stats":
            with st.lock:
                body = json.loads(json.dumps(st.stats))
                body["faults"] = dict(st.faults)
            self.reply(200, body, count=False)
        elif self.path == "/_faults":
            with st.lock:
                self.reply(200, dict(st.faults), count=False)
        elif self.path == "/healthz":
            self.reply(200, {"ok": True}, count=False)
        else:
            self.error(404, "no route " + self.path)

    def do_POST(self):
        st = self.server.state
        st.last = time.monotonic()
        try:
            raw = self.read_body()
        except (ValueError, OSError) as e:
            self.close_connection = True
            self.error(400, str(e))
            return
        path = self.path.split("?", 1)[0]
        if path == "/_faults":
            try:
                with st.lock:
                    st.set_faults(json.loads(raw))
                    f = dict(st.faults)
                self.reply(200, f, count=False)
            except (ValueError, TypeError, AttributeError) as e:
                self.reply(400, {"error": str(e)}, count=False)
            return
        if path == "/_reset":
            with st.lock:
                st.reset()
            self.reply(200, {"ok": True}, count=False)
            return
        if path not in ("/v1/embeddings", "/v1/chat/completions"):
            self.error(404, "no route " + self.path)
            return
        if self.faults_first():
            return
        try:
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError("body is not an object")
        except ValueError as e:
            self.error(400, "bad json: %s" % e)
            return
        if path == "/v1/embeddings":
            self.embeddings(req)
        else:
            self.chat(req)

    def embeddings(self, req):
        st = self.server.state
        inp = req.get("input")
        if isinstance(inp, str):
            inp = [inp]
        if not isinstance(inp, list) or not inp or not all(isinstance(x, str) for x in inp):
            self.error(400, "input must be a string or a non-empty list of strings")
            return
        tokens = sum(est_tokens(x) for x in inp)
        with st.lock:
            st.stats["inputs"] += len(inp)
            st.stats["last_input"] = inp[0]
            f = dict(st.faults)
        if f["max_inputs"] is not None and len(inp) > f["max_inputs"]:
            self.error(413, "batch size %d > maximum allowed batch size %d"
                       % (len(inp), f["max_inputs"]))
            return
        if f["max_tokens"] is not None and tokens > f["max_tokens"]:
            self.error(413, "batch of %d tokens > maximum of %d" % (tokens, f["max_tokens"]))
            return
        dim = f["wrong_dim"] or st.dim
        if f["constant"]:
            self.constant_reply(req, inp, dim, tokens)
            return
        k = f["scale"]
        data = [{"object": "embedding", "index": i, "embedding": [k * v for v in embed(x, dim)]}
                for i, x in enumerate(inp)]
        body = json.dumps({"object": "list", "data": data, "model": req.get("model") or st.model,
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}).encode()
        if f["malformed"]:
            body = body[:len(body) // 2]
        self.reply(200, body)
        if f["malformed"] or f["wrong_dim"]:
            return
        with st.lock:
            st.stats["embedded"] += len(inp)
            st.stats["max_batch"] = max(st.stats["max_batch"], len(inp))
            st.stats["max_batch_tokens"] = max(st.stats["max_batch_tokens"], tokens)
            served = st.stats["served"]
            for x in inp:
                h = hashlib.sha256(x.encode("utf-8")).hexdigest()
                served[h] = served.get(h, 0) + 1

    def constant_reply(self, req, inp, dim, tokens):
        st = self.server.state
        vec = json.dumps(embed("", dim))
        data = ",".join('{"object":"embedding","index":%d,"embedding":%s}' % (i, vec)
                        for i in range(len(inp)))
        body = ('{"object":"list","data":[%s],"model":%s,"usage":{"prompt_tokens":%d,'
                '"total_tokens":%d}}' % (data, json.dumps(req.get("model") or st.model),
                                         tokens, tokens)).encode()
        self.reply(200, body)
        with st.lock:
            st.stats["embedded"] += len(inp)
            st.stats["max_batch"] = max(st.stats["max_batch"], len(inp))

    def chat(self, req):
        st = self.server.state
        png = None
        prompt = None
        try:
            for m in req.get("messages") or []:
                content = m.get("content")
                for part in content if isinstance(content, list) else []:
                    if part.get("type") == "text":
                        prompt = part.get("text")
                    if part.get("type") == "image_url":
                        url = part["image_url"]["url"]
                        head, b64 = url.split(",", 1)
                        if head.startswith("data:image/png;base64"):
                            png = base64.b64decode(b64, validate=True)
        except (AttributeError, KeyError, TypeError, ValueError, binascii.Error) as e:
            self.error(400, "bad image_url: %s" % e)
            return
        if not png or not png.startswith(b"\x89PNG\r\n\x1a\n"):
            self.error(400, "no base64 PNG image_url in the messages")
            return
        digest = hashlib.sha256(png).hexdigest()
        text = st.ocr_map.get(digest, st.ocr_text)
        with st.lock:
            st.stats["ocr_pages"] += 1
            st.stats["ocr_last"] = {"model": req.get("model"), "max_tokens": req.get("max_tokens"),
                                    "prompt": prompt}
            f = dict(st.faults)
        if f["ocr_format"] == "json":
            text = json.dumps({"primary_language": "en", "is_rotation_valid": True,
                               "rotation_correction": 0, "is_table": False,
                               "is_diagram": False, "natural_text": text})
        elif f["ocr_format"] == "yaml":
            text = ("---\nprimary_language: en\nis_rotation_valid: True\n"
                    "rotation_correction: 0\nis_table: False\nis_diagram: False\n---\n" + text)
        body = json.dumps({
            "id": "fake-%d" % st.stats["ocr_pages"], "object": "chat.completion",
            "model": req.get("model") or st.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": est_tokens(text),
                      "total_tokens": 1 + est_tokens(text)}}).encode()
        if f["malformed"]:
            body = body[:len(body) // 2]
        self.reply(200, body)
        if not f["malformed"]:
            with st.lock:
                served = st.stats["ocr_served"]
                served[digest] = served.get(digest, 0) + 1


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # server_close must not wait for handler threads: one still reading a
    # kept-alive connection (or sleeping out an injected delay) would hold
    # SIGTERM up; they are daemon threads and end with the process
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that hung up (a timeout, a fatal error elsewhere) is normal here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            self.state.note("%s: %s" % (client_address, exc))
            return
        super().handle_error(request, client_address)


def main():
    p = argparse.ArgumentParser(description="fake OpenAI-compatible GPU server for tests")
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--model", default="fake-embed")
    p.add_argument("--api-key")
    p.add_argument("--idle-timeout", type=float, default=0)
    p.add_argument("--log")
    p.add_argument("--ocr-text", default="fake ocr text")
    p.add_argument("--ocr-map")
    p.add_argument("--latency-ms", type=float)
    p.add_argument("--jitter-ms", type=float)
    p.add_argument("--drop-rate", type=float)
    p.add_argument("--fail-next", type=int)
    p.add_argument("--error-rate", type=float)
    p.add_argument("--error-statuses", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--retry-after", type=int)
    p.add_argument("--max-inputs", type=int)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--wrong-dim", type=int)
    p.add_argument("--malformed", action="store_const", const=True)
    p.add_argument("--scale", type=float)
    p.add_argument("--constant", action="store_const", const=True)
    p.add_argument("--ocr-format", choices=["plain", "json", "yaml"])
    p.add_argument("--seed", type=int)
    args = p.parse_args()
    if args.dim < 1:
        p.error("--dim must be at least 1")

    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    while not stop.wait(0.2):
        if args.idle_timeout > 0 and time.monotonic() - srv.state.last > args.idle_timeout:
            srv.state.note("idle for %gs, exiting" % args.idle_timeout)
            break
    srv.shutdown()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
