// End-to-end test of the browser demo page against an already running demo server
// (5 s idle timeout, 3 s warning):
//
//   DEMO_URL=http://127.0.0.1:3000 node demo.test.mjs
//
// Uses the system Chromium (CHROMIUM, default /usr/bin/chromium) through playwright-core,
// so nothing is downloaded. Exits 0 when every step passes, 1 otherwise.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const OVERALL_TIMEOUT_MS = 60_000;

const base = process.env.DEMO_URL;
if (!base) {
  console.error('DEMO_URL is not set: start the demo server and run e.g.\n' +
    '  DEMO_URL=http://127.0.0.1:3000 node demo.test.mjs');
  process.exit(2);
}

// A hung browser or server must not hang the run.
const watchdog = setTimeout(() => {
  console.error(`FAIL: the test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

let passed = 0;
let failed = 0;
const started = Date.now();

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (err) {
    failed++;
    console.error(`not ok ${passed + failed} - ${name}\n  ${String(err && err.message || err).replaceAll('\n', '\n  ')}`);
    throw Object.assign(new Error(name), { reported: true });
  }
  passed++;
  console.log(`ok ${passed} - ${name} (${Date.now() - t0} ms)`);
}

// Waits until the element is visible (a <dialog> is only visible while open).
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

// Status of a fetch made by the page itself, with the page's cookie.
function statusFromPage(page, path) {
  return page.evaluate(async (p) => (await fetch(p, { cache: 'no-store' })).status, path);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
console.log(`# chromium ${browser.version()}, server ${base}`);

const pageErrors = [];
const consoleErrors = [];
let exitCode = 0;
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    // The expected 401s (timed-out session) are logged by Chromium as resource errors.
    if (msg.type() === 'error' && !/status of 401/.test(msg.text())) {
      consoleErrors.push(msg.text());
    }
  });

  await step('open the page and log in as alice', async () => {
    const res = await page.goto(base, { waitUntil: 'load' });
    assert.equal(res && res.status(), 200, `GET ${base} did not answer 200`);
    await visible(page, '#login-form', 5000, 'the login form is shown for a new visitor');
    await page.fill('#login-user', 'alice');
    await page.fill('#login-password', 'demo');
    await page.click('#login-submit');
    await visible(page, '#app', 5000, 'the app is shown after logging in');
    assert.equal(await page.locator('#login-form').isVisible(), false, 'the login form is still shown');
    // A marker that a reload would lose: the re-login must happen in place.
    await page.evaluate(() => { window.__notReloaded = true; });
  });

  await step('type an unsaved draft into the note', async () => {
    await page.fill('#note', 'unsaved draft');
    assert.equal(await page.inputValue('#note'), 'unsaved draft');
  });

  await step('the warning dialog opens with a countdown of at most 3 s', async () => {
    await visible(page, '#warning-dialog', 5000, 'no warning ~2 s after login');
    const text = (await page.textContent('#warning-countdown')).trim();
    const n = Number(text);
    assert.ok(Number.isInteger(n) && n >= 0 && n <= 3, `countdown shows "${text}", expected a number 0..3`);
    const dialogText = await page.textContent('#warning-dialog');
    assert.match(dialogText.replace(/\s+/g, ' '), /Your session will expire in \d+ seconds?/);
  });

  await step('"Stay logged in" closes the warning and keeps the session', async () => {
    await page.click('#stay-logged-in');
    await hidden(page, '#warning-dialog', 3000, 'the warning closes after "Stay logged in"');
    assert.equal(await statusFromPage(page, '/api/me'), 200, '/api/me does not answer 200 after "Stay logged in"');
  });

  await step('staying idle: warning again, then "Login to continue"', async () => {
    await visible(page, '#warning-dialog', 5000, 'no second warning while idle');
    await visible(page, '#relogin-dialog', 10000, 'no "Login to continue" dialog after the timeout');
    assert.equal(await page.locator('#warning-dialog').isVisible(), false, 'the warning is still open under the re-login dialog');
    assert.equal((await page.textContent('#relogin-title')).trim(), 'Login to continue');
    assert.equal((await page.textContent('#relogin-message')).trim(), 'Logged out due to session timeout');
    assert.equal(await page.inputValue('#relogin-user'), 'alice', 'the user field is not prefilled');
    assert.equal((await page.textContent('#relogin-submit')).trim(), 'Login to continue');
    assert.equal(await statusFromPage(page, '/api/notes'), 401, '/api/notes does not answer 401 after the timeout');
  });

  await step('log in again in place: the unsaved draft is still there', async () => {
    await page.fill('#relogin-password', 'demo');
    await page.click('#relogin-submit');
    await hidden(page, '#relogin-dialog', 5000, 'the re-login dialog closes after logging in');
    await visible(page, '#app', 1000, 'the app is shown after logging in again');
    assert.equal(await page.evaluate(() => window.__notReloaded === true), true, 'the page was reloaded');
    assert.equal(await page.inputValue('#note'), 'unsaved draft', 'the unsaved note text was lost');
    assert.equal(await statusFromPage(page, '/api/session?auto=true'), 200, 'the new session is not there');
  });

  await step('the new session has its poll and socket: countdown shown, warning arrives', async () => {
    try {
      await page.waitForFunction(
        () => /^Session ends in \d+ s$/.test(document.getElementById('session-left').textContent),
        null, { timeout: 3000 });
    } catch {
      assert.fail(`#session-left shows "${await page.textContent('#session-left')}", expected "Session ends in N s"`);
    }
    await visible(page, '#warning-dialog', 5000, 'no warning over the reconnected socket');
  });

  await step('no page errors and no unexpected console errors', async () => {
    assert.deepEqual(pageErrors, [], `page errors:\n${pageErrors.join('\n')}`);
    assert.deepEqual(consoleErrors, [], `console errors:\n${consoleErrors.join('\n')}`);
  });
} catch (err) {
  exitCode = 1;
  if (!err.reported) console.error('FAIL:', err); // outside a step, e.g. the browser died
} finally {
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}

console.log(`# ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode);
