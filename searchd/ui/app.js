// The search page of sage-searchd: results as you type, filters, paging,
// keyboard navigation and a document view, over the JSON API of the same
// server. Text from the index is only ever put in the page as text
// (textContent, text nodes): matches are wrapped in <mark> elements built
// here from the API's byte ranges, never from HTML.
'use strict';

const PAGE = 10;
const $ = (id) => document.getElementById(id);
const state = { index: null, offset: 0, total: 0, active: -1, seq: 0, timer: null };

function apiKey() {
    return sessionStorage.getItem('sage-key') || '';
}

async function api(path) {
    const headers = {};
    if (apiKey())
        headers.Authorization = `Bearer ${apiKey()}`;
    const r = await fetch(path, { headers });
    if (r.status === 401 || r.status === 403) {
        $('keyform').hidden = false;
        throw new Error(r.status === 401 ? 'This server needs an API key.' : 'The key is not valid.');
    }
    const body = await r.json().catch(() => null);
    if (!r.ok)
        throw new Error(body && body.error ? body.error.message : `HTTP ${r.status}`);
    return body;
}

function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls)
        e.className = cls;
    if (text !== undefined)
        e.textContent = text;
    return e;
}

// The snippet as text nodes and <mark> elements: the API gives the ranges
// of the matches as byte offsets into the snippet's UTF-8.
function snippet(text, ranges) {
    const p = el('p', 'snippet');
    const bytes = new TextEncoder().encode(text || '');
    const dec = new TextDecoder();
    let at = 0;
    for (const [a, b] of ranges || []) {
        if (a < at || b > bytes.length || b < a)
            continue;
        p.append(document.createTextNode(dec.decode(bytes.subarray(at, a))));
        p.append(el('mark', null, dec.decode(bytes.subarray(a, b))));
        at = b;
    }
    p.append(document.createTextNode(dec.decode(bytes.subarray(at))));
    return p;
}

function params(extra) {
    const u = new URLSearchParams(extra);
    if (state.index)
        u.set('index', state.index);
    return u;
}

async function search() {
    const q = $('q').value.trim();
    const seq = ++state.seq;
    if (!q) {
        $('results').replaceChildren();
        $('status').textContent = '';
        $('pager').hidden = true;
        return;
    }
    const u = params({ q, k: PAGE, offset: state.offset });
    if ($('library').value)
        u.set('library', $('library').value);
    if ($('mode').value)
        u.set('mode', $('mode').value);
    let r;
    try {
        r = await api(`/v1/search?${u}`);
    } catch (e) {
        if (seq === state.seq)
            $('status').textContent = e.message;
        return;
    }
    if (seq !== state.seq)
        return;     // a newer query answered first
    state.total = r.total;
    state.active = -1;
    const list = $('results');
    list.replaceChildren();
    r.hits.forEach((h, i) => {
        const li = el('li');
        const a = el('a', 'hit', h.title || h.path);
        a.href = `#doc=${h.doc}`;
        a.dataset.i = i;
        li.append(a);
        li.append(el('div', 'path', `${h.library}:${h.path}${h.page ? ` (page ${h.page})` : ''}`));
        if (h.heading)
            li.append(el('div', 'heading', h.heading));
        li.append(snippet(h.snippet, h.highlights));
        list.append(li);
    });
    const from = r.hits.length ? state.offset + 1 : 0;
    const degraded = r.degraded ? ` — answered by words alone (${r.degraded.reason})` : '';
    $('status').textContent = r.hits.length
        ? `Results ${from}–${state.offset + r.hits.length} (${r.mode} search, ${r.took_ms.toFixed(1)} ms)${degraded}`
        : `Nothing found for “${q}”.`;
    $('pager').hidden = !r.hits.length;
    $('prev').disabled = state.offset === 0;
    $('next').disabled = r.hits.length < PAGE;
    $('page').textContent = `page ${state.offset / PAGE + 1}`;
}

function schedule(resetPage) {
    if (resetPage)
        state.offset = 0;
    clearTimeout(state.timer);
    state.timer = setTimeout(search, 150);
}

function focusHit(i) {
    const links = [...$('results').querySelectorAll('a.hit')];
    if (!links.length)
        return;
    state.active = Math.max(-1, Math.min(links.length - 1, i));
    links.forEach((a, j) => a.parentElement.classList.toggle('active', j === state.active));
    if (state.active < 0)
        $('q').focus();
    else
        links[state.active].focus();
}

async function showDocument(id) {
    const doc = $('doc');
    let d;
    try {
        d = await api(`/v1/documents/${encodeURIComponent(id)}?${params({})}`);
    } catch (e) {
        $('status').textContent = e.message;
        return;
    }
    $('doc-title').textContent = d.title || d.path;
    $('doc-path').textContent = `${d.library}:${d.path}`;
    const body = $('doc-body');
    body.replaceChildren();
    let last = null;
    for (const c of d.chunks) {
        if (c.heading && c.heading !== last)
            body.append(el('h3', null, c.heading));
        last = c.heading;
        body.append(el('p', null, c.text));
    }
    $('results').hidden = $('pager').hidden = true;
    doc.hidden = false;
    doc.focus();
}

function route() {
    const m = /^#doc=(\d+)$/.exec(location.hash);
    if (m) {
        showDocument(m[1]);
        return;
    }
    $('doc').hidden = true;
    $('results').hidden = false;
    $('pager').hidden = !$('results').children.length;
}

async function loadIndex() {
    let r;
    try {
        r = await api('/v1/indexes');
    } catch (e) {
        $('status').textContent = e.message;
        return;
    }
    const ix = r.indexes[0];
    if (!ix) {
        $('footer').textContent = 'No index is loaded yet.';
        return;
    }
    state.index = ix.name;
    const b = ix.build || {};
    const libs = (b.libraries || []).map((l) => l.name);
    if ((b.sources || []).length)
        libs.push('default');
    for (const name of libs) {
        const o = el('option', null, name);
        o.value = name;
        $('library').append(o);
    }
    const vectors = b.embedding && b.embedding.status === 'ok';
    for (const o of $('mode').querySelectorAll('[data-needs-vectors]'))
        o.disabled = !vectors;
    const built = b.build_time ? new Date(b.build_time * 1000) : new Date(ix.loaded_at);
    const count = ix.counts ? `${ix.counts.documents} documents, ` : '';
    $('footer').textContent = `Index ${ix.name}, ${count}generation ${ix.generation}, ` +
        `${b.build_time ? 'built' : 'loaded'} ${built.toISOString().slice(0, 16).replace('T', ' ')} UTC` +
        (r.indexes.length > 1 ? ` (${r.indexes.length - 1} more indexes on this server)` : '');
}

document.addEventListener('DOMContentLoaded', () => {
    $('search').addEventListener('submit', (e) => { e.preventDefault(); schedule(true); });
    $('q').addEventListener('input', () => schedule(true));
    $('library').addEventListener('change', () => schedule(true));
    $('mode').addEventListener('change', () => schedule(true));
    $('prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - PAGE); search(); });
    $('next').addEventListener('click', () => { state.offset += PAGE; search(); });
    $('back').addEventListener('click', (e) => { e.preventDefault(); history.back(); });
    $('home').addEventListener('click', () => { $('q').focus(); });
    $('keyform').addEventListener('submit', (e) => {
        e.preventDefault();
        sessionStorage.setItem('sage-key', $('key').value);
        $('keyform').hidden = true;
        loadIndex().then(() => schedule(false));
    });
    document.addEventListener('keydown', (e) => {
        if (!$('doc').hidden)
            return;
        if (e.key === 'ArrowDown') {
            e.preventDefault();
            focusHit(state.active + 1);
        } else if (e.key === 'ArrowUp') {
            e.preventDefault();
            focusHit(state.active - 1);
        }
    });
    window.addEventListener('hashchange', route);
    loadIndex().then(route);
});
