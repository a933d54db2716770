// End-to-end test of a demo page and the browser client it includes
// (idle-timeout.js), against an already running demo server with a 5 s idle
// timeout and a 3 s warning:
//
//   DEMO_URL=http://127.0.0.1:3000 DEMO_LOGIN=password node demo.test.mjs
//
// DEMO_LOGIN says how the server was started: `password` (the default) or
// `sso` (--login sso). Each scenario runs in its own browser context (its own
// cookies) with its own user, four at a time. Uses the system Chromium (CHROMIUM, default
// /usr/bin/chromium) through playwright-core, so nothing is downloaded.
// Exits 0 when every scenario passes, 1 otherwise, 2 on a usage error.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const OVERALL_TIMEOUT_MS = 120_000;
const TIMEOUT_S = 5;
const WARN_S = 3;
// At most this many scenarios at once: each waits seconds for the server's
// timers, and more would starve a 2-core machine into late pages.
const AT_ONCE = 4;

const base = process.env.DEMO_URL;
const mode = process.env.DEMO_LOGIN || 'password';
if (!base || !['password', 'sso'].includes(mode)) {
  console.error('usage: DEMO_URL=http://127.0.0.1:3000 [DEMO_LOGIN=password|sso] node demo.test.mjs\n' +
    '(start the demo with --timeout-seconds 5 --warn-seconds 3, and --login sso for DEMO_LOGIN=sso)');
  process.exit(2);
}

// A hung browser or server must not hang the run.
const watchdog = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

const run = Date.now().toString(36);
let users = 0;
const userName = (what) => `${what}-${run}-${++users}`;

// ------------------------------------------------------------------ helpers

async function visible(page, selector, timeout, what) {
  try {
    await page.locator(selector).waitFor({ state: 'visible', timeout });
  } catch {
    assert.fail(`${what}: ${selector} did not become visible within ${timeout} ms`);
  }
}

async function hidden(page, selector, timeout, what) {
  try {
    await page.locator(selector).waitFor({ state: 'hidden', timeout });
  } catch {
    assert.fail(`${what}: ${selector} is still visible after ${timeout} ms`);
  }
}

const isOpen = (page, id) => page.evaluate((i) => Boolean(document.getElementById(i)?.open), id);
const text = async (page, selector) => ((await page.textContent(selector)) || '').replace(/\s+/g, ' ').trim();

// Status and body of a fetch made by the page itself, with its cookie.
function fromPage(page, path) {
  return page.evaluate(async (p) => {
    const res = await fetch(p, { cache: 'no-store' });
    let body = null;
    try { body = await res.json(); } catch { /* empty */ }
    return { status: res.status, body };
  }, path);
}

// Follows the page's errors; 401s and the expected aborted sockets are not errors.
function watch(page, errors) {
  page.on('pageerror', (err) => errors.push(`${page.url()}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 401|WebSocket connection .* failed/.test(msg.text())) {
      errors.push(`${page.url()}: ${msg.text()}`);
    }
  });
  return page;
}

// Counts the notification sockets and event streams a page opens.
function countStreams(page) {
  const streams = { websocket: 0, sse: 0 };
  page.on('websocket', (ws) => { if (ws.url().includes('/rest/user/timeout/notifications')) streams.websocket++; });
  page.on('request', (req) => { if (req.url().includes('/rest/user/timeout/events')) streams.sse++; });
  return streams;
}

async function newPage(context, errors) {
  return watch(await context.newPage(), errors);
}

async function logIn(page, user) {
  const res = await page.goto(base, { waitUntil: 'load' });
  assert.equal(res && res.status(), 200, `GET ${base} did not answer 200`);
  if (mode === 'sso') {
    await visible(page, '#sso-login', 5000, 'the SSO login screen is shown to a new visitor');
    await page.click('#sso-start');
    await visible(page, '#idp-form', 5000, 'the identity provider asks who you are');
    await page.fill('#idp-user', user);
    await page.fill('#idp-password', 'demo');
    await page.click('#idp-submit');
  } else {
    await visible(page, '#login-form', 5000, 'the login form is shown to a new visitor');
    await page.fill('#login-user', user);
    await page.fill('#login-password', 'demo');
    await page.click('#login-submit');
  }
  await visible(page, '#app', 8000, 'the app is shown after logging in');
  assert.equal(await text(page, '#user-name'), user);
}

// Resolves when `page` has closed, also if it closed before this was asked:
// a pop-up that needs no prompt can close before the test looks.
function closing(page, timeout = 8000) {
  if (page.isClosed()) return Promise.resolve();
  return page.waitForEvent('close', { timeout });
}

// A draft the server never saw, and a marker a reload would lose.
async function draft(page, words) {
  await page.fill('#note', words);
  await page.evaluate(() => { window.__notReloaded = true; });
}

async function keptDraft(page, words) {
  assert.equal(await page.evaluate(() => window.__notReloaded === true), true, 'the page was reloaded');
  assert.equal(await page.inputValue('#note'), words, 'the unsaved note text was lost');
}

async function warningShown(page, what) {
  await visible(page, '#idle-timeout-warning', 6000, what);
  const shown = await text(page, '#idle-timeout-warning-text');
  const match = /Your session will expire in (\d+) seconds?\./.exec(shown);
  assert.ok(match, `the warning says "${shown}"`);
  const left = Number(match[1]);
  assert.ok(left >= 0 && left <= WARN_S, `the countdown shows ${left} s, expected 0..${WARN_S}`);
  return left;
}

// ------------------------------------------------------------------ scenarios

const scenarios = [];
const scenario = (name, modes, fn) => { if (modes.includes(mode)) scenarios.push({ name, fn }); };
const both = ['password', 'sso'];

scenario('the client is served with an ETag and revalidates with 304', both, async () => {
  for (const file of ['idle-timeout.js', 'idle-timeout.css']) {
    const url = `${base}/rest/user/timeout/client/${file}`;
    const first = await fetch(url);
    assert.equal(first.status, 200, `${url}`);
    const etag = first.headers.get('etag');
    assert.ok(etag, `${file} has no ETag`);
    assert.match(first.headers.get('cache-control') || '', /no-cache/);
    const again = await fetch(url, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304, `${file} with its ETag`);
  }
});

scenario('warning: countdown from the server, "Stay logged in", Escape, focus returned', both, async ({ context, errors }) => {
  const page = await newPage(context, errors);
  await logIn(page, userName('stay'));
  const shown = await warningShown(page, 'no warning ~2 s after login');
  const { body } = await fromPage(page, '/rest/user/timeout/status');
  assert.ok(Math.abs(body.secondsLeft - shown) <= 1.5,
    `the countdown (${shown} s) is not the server's time left (${body.secondsLeft} s)`);
  assert.equal(await page.getAttribute('#idle-timeout-announce', 'aria-live'), 'polite');
  assert.match(await text(page, '#idle-timeout-announce'), /expire in \d+ seconds?/);
  assert.deepEqual(await page.$$eval('#idle-timeout-warning button', (b) => b.map((x) => x.textContent)),
    ['Stay logged in', 'Log out']);
  await page.click('#idle-timeout-stay');
  await hidden(page, '#idle-timeout-warning', 3000, 'the warning closes after "Stay logged in"');
  // The next warning comes 2 s later: where the user is then is where the
  // focus must come back to.
  await page.focus('#note');
  const after = await fromPage(page, '/rest/user/timeout/status');
  assert.ok(after.status === 200 && after.body.secondsLeft > WARN_S, `the deadline did not move: ${JSON.stringify(after)}`);

  await warningShown(page, 'no second warning while idle');
  // Stay logged in, Log out, then Tab wraps round to Stay logged in.
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'idle-timeout-stay',
    'Tab left the warning dialog instead of wrapping round');
  await page.keyboard.press('Escape');
  await hidden(page, '#idle-timeout-warning', 3000, 'Escape closes the warning');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'note', 'focus did not return to the note');
  const escaped = await fromPage(page, '/rest/user/timeout/status');
  assert.ok(escaped.status === 200 && escaped.body.secondsLeft > WARN_S, 'Escape did not count as "Stay logged in"');
});

scenario('warning: "Log out" ends the session and shows the login screen', both, async ({ context, errors }) => {
  const page = await newPage(context, errors);
  await logIn(page, userName('leave'));
  await warningShown(page, 'no warning ~2 s after login');
  await page.click('#idle-timeout-logout');
  await visible(page, mode === 'sso' ? '#sso-login' : '#login-form', 3000, 'the login screen after "Log out"');
  assert.equal((await fromPage(page, '/api/me')).status, 401, 'still logged in after "Log out"');
});

scenario('"Login to continue": the unsaved text is kept, the socket comes back', ['password'], async ({ context, errors }) => {
  const page = await newPage(context, errors);
  const user = userName('relogin');
  await logIn(page, user);
  await draft(page, 'unsaved draft');
  await visible(page, '#idle-timeout-login', 12000, 'no "Login to continue" after the timeout');
  assert.equal(await isOpen(page, 'idle-timeout-warning'), false, 'the warning is still open under it');
  assert.equal(await text(page, '#idle-timeout-login-title'), 'Login to continue');
  assert.equal(await text(page, '#idle-timeout-login-reason'), 'Logged out due to session timeout');
  assert.equal(await page.inputValue('#idle-timeout-login-user'), user, 'the user is not prefilled');
  assert.equal(await page.getAttribute('#idle-timeout-login-user', 'readonly'), '', 'another user could continue this page');
  assert.equal(await text(page, '#idle-timeout-continue'), 'Continue');
  assert.equal(await text(page, '#idle-timeout-login-switch'), 'Switch user');
  assert.equal((await fromPage(page, '/api/notes')).status, 401, '/api/notes answers after the timeout');
  await page.keyboard.press('Escape');
  assert.equal(await isOpen(page, 'idle-timeout-login'), true, 'Escape dismissed "Login to continue"');

  await page.fill('#idle-timeout-login-password', 'wrong');
  await page.click('#idle-timeout-continue');
  await page.waitForFunction(() => document.getElementById('idle-timeout-login-error').textContent !== '', null, { timeout: 3000 });
  assert.equal(await isOpen(page, 'idle-timeout-login'), true, 'a wrong password closed the dialog');

  await page.fill('#idle-timeout-login-password', 'demo');
  await page.click('#idle-timeout-continue');
  await hidden(page, '#idle-timeout-login', 5000, 'the dialog closes after logging in again');
  await keptDraft(page, 'unsaved draft');
  assert.equal((await fromPage(page, '/api/me')).status, 200, 'the new session is not there');
  await warningShown(page, 'no warning over the reconnected socket');
});

scenario('"Switch user" goes back to the main login screen', both, async ({ context, errors }) => {
  const page = await newPage(context, errors);
  await logIn(page, userName('switch'));
  await draft(page, 'not for the next user');
  const dialog = mode === 'sso' ? '#idle-timeout-expired' : '#idle-timeout-login';
  await visible(page, dialog, 12000, 'no dialog after the timeout');
  await page.click(mode === 'sso' ? '#idle-timeout-expired-switch' : '#idle-timeout-login-switch');
  await visible(page, mode === 'sso' ? '#sso-login' : '#login-form', 5000, 'the main login screen after "Switch user"');
  assert.equal(await page.evaluate(() => window.__notReloaded === true), false, 'the page still holds the old user\'s work');
  assert.equal(await page.inputValue('#note'), '', 'the old user\'s text is still on the page');
  assert.equal((await fromPage(page, '/api/me')).status, 401);
});

scenario('"Session expired" -> "Renew session": no prompt while the provider session lives, text kept', ['sso'], async ({ context, errors }) => {
  const page = await newPage(context, errors);
  const user = userName('renew');
  await logIn(page, user);
  await draft(page, 'draft across SSO');
  await visible(page, '#idle-timeout-expired', 12000, 'no "Session expired" after the timeout');
  assert.equal(await text(page, '#idle-timeout-expired-title'), 'Session expired');
  assert.deepEqual(await page.$$eval('#idle-timeout-expired button', (b) => b.map((x) => x.textContent)),
    ['Renew session', 'Switch user']);
  assert.equal(await isOpen(page, 'idle-timeout-login'), false, 'the password dialog is shown with SSO');

  const popupOpened = context.waitForEvent('page', { timeout: 5000 });
  await page.click('#idle-timeout-renew');
  const popup = watch(await popupOpened, errors);
  await closing(popup).catch(() => assert.fail(`the provider asked again (${popup.url()}) or the pop-up stayed open`));
  await hidden(page, '#idle-timeout-expired', 5000, 'the dialog closes after renewing');
  await keptDraft(page, 'draft across SSO');
  const me = await fromPage(page, '/rest/user/timeout/status');
  assert.equal(me.status, 200);
  assert.equal(me.body.user, user);
});

scenario('"Renew session" prompts when the provider session is gone, then continues', ['sso'], async ({ context, errors }) => {
  const page = await newPage(context, errors);
  const user = userName('prompt');
  await logIn(page, user);
  await draft(page, 'draft kept through the prompt');
  await context.clearCookies({ name: 'demo_idp' });
  await visible(page, '#idle-timeout-expired', 12000, 'no "Session expired" after the timeout');
  const popupOpened = context.waitForEvent('page', { timeout: 5000 });
  await page.click('#idle-timeout-renew');
  const popup = watch(await popupOpened, errors);
  await visible(popup, '#idp-form', 5000, 'the provider does not ask although its session is gone');
  await popup.fill('#idp-user', user);
  await popup.fill('#idp-password', 'demo');
  const closed = closing(popup);
  await popup.click('#idp-submit');
  await closed;
  await hidden(page, '#idle-timeout-expired', 5000, 'the dialog closes after renewing');
  await keptDraft(page, 'draft kept through the prompt');
});

scenario('5 tabs: 1 socket, dialogs only on the main one, hand-over, logout and re-login everywhere', both, async ({ context, errors }) => {
  const user = userName('tabs');
  const first = await newPage(context, errors);
  const firstStreams = countStreams(first);
  await logIn(first, user);
  const tabs = [first];
  const streams = [firstStreams];
  for (let i = 1; i < 5; i++) {
    const tab = await newPage(context, errors);
    streams.push(countStreams(tab));
    await tab.goto(base, { waitUntil: 'load' });
    await visible(tab, '#app', 5000, `tab ${i + 1} shows the app`);
    tabs.push(tab);
  }
  await warningShown(first, 'no warning in the first tab');
  const sockets = streams.reduce((n, s) => n + s.websocket + s.sse, 0);
  assert.equal(sockets, 1, `5 tabs opened ${sockets} notification streams, expected 1`);
  for (const [i, tab] of tabs.slice(1).entries()) {
    assert.equal(await isOpen(tab, 'idle-timeout-warning'), false, `tab ${i + 2} shows the warning too`);
  }

  // The main tab closes: the next one takes over the socket and the dialogs.
  await first.close();
  const rest = tabs.slice(1);
  const dialog = mode === 'sso' ? '#idle-timeout-expired' : '#idle-timeout-login';
  await visible(rest[0], dialog, 12000, 'the tab that took over shows no dialog at the timeout');
  assert.ok(streams[1].websocket + streams[1].sse >= 1, 'the tab that took over opened no notification stream');
  for (const [i, tab] of rest.slice(1).entries()) {
    await visible(tab, '#idle-timeout-banner', 3000, `tab ${i + 3} is not told the session ended`);
    assert.equal(await isOpen(tab, dialog.slice(1)), false, `tab ${i + 3} shows the dialog too`);
  }

  // Logging in again in the main tab ends the banners.
  if (mode === 'sso') {
    const popupOpened = context.waitForEvent('page', { timeout: 5000 });
    await rest[0].click('#idle-timeout-renew');
    await closing(await popupOpened);
  } else {
    await rest[0].fill('#idle-timeout-login-password', 'demo');
    await rest[0].click('#idle-timeout-continue');
  }
  await hidden(rest[0], dialog, 5000, 'the dialog closes after logging in again');
  for (const [i, tab] of rest.slice(1).entries()) {
    await hidden(tab, '#idle-timeout-banner', 3000, `tab ${i + 3} did not follow the re-login`);
  }

  // "Log out" in one tab logs out all of them.
  await rest[2].click('#logout');
  for (const [i, tab] of rest.entries()) {
    await visible(tab, mode === 'sso' ? '#sso-login' : '#login-form', 3000, `tab ${i + 2} did not follow the logout`);
  }
});

scenario('a dropped socket is opened again, after a status check, and the warning still arrives', ['password'], async ({ context, errors }) => {
  let sockets = 0;
  let statusChecks = 0;
  let checksAtReopen = 0;
  await context.routeWebSocket(/\/rest\/user\/timeout\/notifications$/, (ws) => {
    sockets++;
    if (sockets === 2) checksAtReopen = statusChecks;
    ws.connectToServer();
    // The network drops the first socket soon after it opened.
    if (sockets === 1) setTimeout(() => ws.close({ code: 4000, reason: 'dropped by the test' }), 300);
  });
  const page = await newPage(context, errors);
  page.on('request', (req) => { if (req.url().endsWith('/rest/user/timeout/status')) statusChecks++; });
  await logIn(page, userName('dropped'));
  await warningShown(page, 'no warning after the socket was dropped');
  assert.ok(sockets >= 2, `the dropped socket was not opened again (${sockets} sockets)`);
  // One check when the tab starts listening, one before it opens again.
  assert.ok(checksAtReopen >= 2, `no status check before reopening (${checksAtReopen} checks)`);
});

scenario('a tab left on the login screen follows a login in another tab, and takes over when it closes', ['password'], async ({ context, errors }) => {
  const waiting = await newPage(context, errors);
  await waiting.goto(base, { waitUntil: 'load' });
  await visible(waiting, '#login-form', 5000, 'the login form');
  const other = await newPage(context, errors);
  const user = userName('follow');
  await logIn(other, user);
  await visible(waiting, '#app', 3000, 'the tab on the login screen did not follow the login');
  assert.equal(await text(waiting, '#user-name'), user);
  await other.close();
  await warningShown(waiting, 'the remaining tab did not take over the warning');
});

scenario('without WebSocket the warning comes over Server-Sent Events', ['password'], async ({ context, errors }) => {
  await context.addInitScript(() => { delete window.WebSocket; });
  const page = await newPage(context, errors);
  const streams = countStreams(page);
  await logIn(page, userName('sse'));
  await warningShown(page, 'no warning over Server-Sent Events');
  assert.equal(streams.websocket, 0);
  assert.ok(streams.sse >= 1, 'no event stream was opened');
  await visible(page, '#idle-timeout-login', 12000, 'no "Login to continue" over Server-Sent Events');
});

scenario('without WebSocket and EventSource a passive poll still warns and logs out', ['password'], async ({ context, errors }) => {
  await context.addInitScript(() => { delete window.WebSocket; delete window.EventSource; });
  const page = await newPage(context, errors);
  const streams = countStreams(page);
  await logIn(page, userName('poll'));
  await warningShown(page, 'no warning from the poll');
  await visible(page, '#idle-timeout-login', 12000, 'no "Login to continue" from the poll');
  assert.equal(streams.websocket + streams.sse, 0);
});

// ------------------------------------------------------------------ run

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
console.log(`# chromium ${browser.version()}, server ${base}, login ${mode}, ${scenarios.length} scenarios, ${AT_ONCE} at once`);
const started = Date.now();

let next = 0;
const results = [];
async function worker() {
  while (next < scenarios.length) {
    const i = next++;
    results[i] = await runScenario(scenarios[i]);
  }
}
await Promise.all(Array.from({ length: AT_ONCE }, worker));

async function runScenario({ name, fn }) {
  const context = await browser.newContext();
  const errors = [];
  const t0 = Date.now();
  try {
    await fn({ context, errors });
    assert.deepEqual(errors, [], `page errors:\n${errors.join('\n')}`);
    return { name, ok: true, ms: Date.now() - t0 };
  } catch (err) {
    return { name, ok: false, ms: Date.now() - t0, why: String((err && err.message) || err) };
  } finally {
    await context.close().catch(() => {});
  }
}
await browser.close().catch(() => {});
clearTimeout(watchdog);

let failed = 0;
results.forEach((r, i) => {
  if (r.ok) {
    console.log(`ok ${i + 1} - ${r.name} (${r.ms} ms)`);
  } else {
    failed++;
    console.log(`not ok ${i + 1} - ${r.name} (${r.ms} ms)\n  ${r.why.replaceAll('\n', '\n  ')}`);
  }
});
console.log(`# ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
