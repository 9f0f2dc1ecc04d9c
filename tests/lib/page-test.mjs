// Browser test of sage-searchd's search page in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core from npm). Runs the scenario
// against URL, saves screenshots to DIR, prints one "ok"/"not ok" line per
// step and exits 1 if any failed.
//   node page-test.mjs URL DIR [KEY]
import { chromium } from './node/node_modules/playwright-core/index.mjs';

const [url, dir, key] = process.argv.slice(2);
let failed = 0;
const step = async (name, fn) => {
    try {
        await fn();
        console.log(`ok - ${name}`);
    } catch (e) {
        failed++;
        console.log(`not ok - ${name}: ${e.message.split('\n')[0]}`);
    }
};
const expect = (cond, what) => { if (!cond) throw new Error(what); };

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
                                        args: ['--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); d.dismiss(); });
const hits = () => page.$$eval('#results li', (ls) => ls.map((l) => ({
    title: l.querySelector('a.hit').textContent, path: l.querySelector('.path').textContent,
    marks: [...l.querySelectorAll('mark')].map((m) => m.textContent),
    snippet: l.querySelector('.snippet').textContent })));
// Waits for the answer to what action does: the status line is emptied first,
// so an older answer's status cannot pass for the new one.
const settled = async (action) => {
    await page.evaluate(() => { document.querySelector('#status').textContent = ''; });
    await action();
    await page.waitForFunction(() => /^(Results|Nothing)/.test(document.querySelector('#status').textContent));
};
const search = (q) => settled(() => page.fill('#q', q));

await step('the page loads; the footer names the index', async () => {
    const t0 = Date.now();
    await page.goto(url);
    if (key) {
        await page.waitForSelector('#keyform:not([hidden])');
        await page.fill('#key', key);
        await page.click('#keyform button');
    }
    await page.waitForFunction(() => document.querySelector('#footer').textContent.includes('Index '));
    console.log(`# footer: ${await page.textContent('#footer')} (${Date.now() - t0} ms)`);
});

await step('typing a query shows the expected result with its matches marked', async () => {
    const t0 = Date.now();
    await search('snapshot restore');
    console.log(`# first results ${Date.now() - t0} ms after typing`);
    const h = await hits();
    expect(h.length > 0, 'no results');
    expect(h[0].path === 'kestrel:ops/backup.md', `first hit is ${h[0].path}`);
    expect(h[0].marks.some((m) => /snapshot/i.test(m)), 'no marked match');
    await page.screenshot({ path: `${dir}/1-results.png`, fullPage: true });
});

await step('the library filter keeps only that library', async () => {
    await search('the power supply');
    await settled(() => page.selectOption('#library', 'notes'));
    const h = await hits();
    expect(h.length > 0, 'no results in notes');
    expect(h.every((x) => x.path.startsWith('notes:')), 'a hit from another library');
    await page.screenshot({ path: `${dir}/2-library.png`, fullPage: true });
    await settled(() => page.selectOption('#library', ''));
});

await step('paging moves to the next ten and back', async () => {
    await search('kestrel');
    const first = await hits();
    expect(first.length === 10, `page 1 has ${first.length} hits`);
    await settled(() => page.click('#next'));
    expect((await page.textContent('#status')).startsWith('Results 11'), 'not on page 2');
    const second = await hits();
    expect(second.length > 0 && second[0].snippet !== first[0].snippet, 'page 2 is not new');
    await settled(() => page.click('#prev'));
    expect((await page.textContent('#status')).startsWith('Results 1–'), 'not back on page 1');
});

await step('the keyboard reaches a result and opens its document', async () => {
    await search('snapshot restore');
    await page.focus('#q');
    await page.keyboard.press('ArrowDown');
    const focused = await page.evaluate(() => document.activeElement.className);
    expect(focused === 'hit', `focus is on "${focused}"`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#doc:not([hidden])');
    expect(!(await page.isVisible('#pager')) && !(await page.isVisible('#results')),
           'the results stay visible under the document');
    const title = await page.textContent('#doc-title');
    expect(title === 'Backup and restore', `document title "${title}"`);
    expect((await page.textContent('#doc-body')).includes('kestrel snapshot restore'), 'no text');
    await page.screenshot({ path: `${dir}/3-document.png`, fullPage: true });
    await page.click('#back');
    await page.waitForSelector('#doc', { state: 'hidden' });
});

await step('a hostile document is shown as text and runs nothing', async () => {
    await search('xylophone');
    const h = await hits();
    expect(h.length > 0, 'the hostile document is not found');
    expect(h.some((x) => x.snippet.includes('<script>') || x.title.includes('<')), 'markup not shown as text');
    await page.click('#results a.hit');
    await page.waitForSelector('#doc:not([hidden])');
    expect((await page.textContent('#doc-body')).includes('<img'), 'the document text lost its markup');
    const pwned = await page.evaluate(() => window.pwned);
    expect(pwned === undefined, `window.pwned = ${pwned}`);
    expect(await page.$$eval('#doc-body script, #doc-body img, #results script, #results img',
                             (x) => x.length) === 0, 'an element came from the index');
    await page.screenshot({ path: `${dir}/4-hostile.png`, fullPage: true });
});

await step('no script error and no dialog', async () => {
    expect(errors.length === 0, errors.join('; '));
});

await step('readable on a phone', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    await page.click('#back').catch(() => {});
    await search('snapshot');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(wide <= 375, `the page is ${wide} px wide`);
    await page.screenshot({ path: `${dir}/5-phone.png`, fullPage: true });
});

await browser.close();
process.exit(failed ? 1 : 0);
