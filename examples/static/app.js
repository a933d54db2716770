// Browser side of the idle-timeout demo. No framework, no build step.
//
// The page is in one of three states:
//   'login'   no session: the login form is shown;
//   'app'     logged in: the notes app, the passive poll and the notification socket run;
//   'expired' the session timed out: the app stays on screen (with the user's unsaved
//             text) under the "Login to continue" dialog.
'use strict';

const $ = (id) => document.getElementById(id);

const DEFAULT_REASON = 'Logged out due to session timeout';
const POLL_MS = 1000;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 8000;

let state = 'loading';
let me = null;            // { user, timeoutSeconds, warnSeconds } from /api/me or /api/login
let socket = null;        // the current notification WebSocket, or null
let reconnectDelay = RECONNECT_MIN_MS;
let reconnectTimer = null;
let pollTimer = null;
let countdownTimer = null;
// Bumped on every login, logout and timeout, so that the answer to a request started
// in an earlier session cannot act on the current one.
let generation = 0;

// ---------------------------------------------------------------- HTTP

// Calls the API and returns { status, data }; data is the parsed JSON body or null.
// A 401 from anything but /api/login ends the session here, so callers only handle
// success. Network errors reject.
async function api(method, path, body) {
  const gen = generation;
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch { /* 204 or not JSON */ }
  if (res.status === 401 && path !== '/api/login' && gen === generation) {
    onUnauthorized(data);
  }
  return { status: res.status, data };
}

function logoutReason(data) {
  const n = data && typeof data === 'object' ? data.LogoutNotification : null;
  if (!n) return null;
  return typeof n.reason === 'string' && n.reason ? n.reason : DEFAULT_REASON;
}

// A 401 either says the session timed out (offer to log in again in place) or that
// there is no session at all (e.g. logged out in another tab: back to the login form).
function onUnauthorized(data) {
  if (state === 'loading') return; // start() decides what to show
  const reason = logoutReason(data);
  if (reason) sessionExpired(reason);
  else if (state !== 'login') showLogin();
}

function errorText(data, fallback) {
  return data && typeof data.error === 'string' && data.error ? data.error : fallback;
}

// ---------------------------------------------------------------- states

function showLogin(message = '') {
  leaveSession();
  state = 'login';
  $('loading').hidden = true;
  $('login-error').textContent = message;
  closeDialog('warning-dialog');
  closeDialog('relogin-dialog');
  $('app').hidden = true;
  $('note').value = '';
  $('note-status').textContent = '';
  $('login-password').value = '';
  $('login-form').hidden = false;
  $('login-user').focus();
}

function enterSession(info) {
  leaveSession();
  me = info;
  state = 'app';
  $('loading').hidden = true;
  $('login-form').hidden = true;
  $('login-error').textContent = '';
  $('user-name').textContent = info.user;
  $('session-left').textContent = '';
  $('app').hidden = false;
  connectSocket();
  poll();
  loadNote();
}

function sessionExpired(reason) {
  if (state !== 'app') return; // already handled (socket and poll can both report it)
  leaveSession();
  state = 'expired';
  $('session-left').textContent = 'Session ended';
  closeDialog('warning-dialog');
  $('relogin-message').textContent = reason;
  $('relogin-user').value = me ? me.user : '';
  $('relogin-password').value = '';
  $('relogin-error').textContent = '';
  openDialog('relogin-dialog');
}

// Stops everything that belongs to the current session: poll, socket, countdown.
function leaveSession() {
  generation++;
  clearTimeout(pollTimer);
  clearTimeout(reconnectTimer);
  clearInterval(countdownTimer);
  reconnectDelay = RECONNECT_MIN_MS;
  if (socket) {
    const s = socket;
    socket = null; // first, so that its close event is ignored
    s.close();
  }
}

// ---------------------------------------------------------------- dialogs

function openDialog(id) {
  const d = $(id);
  if (!d.open) d.showModal();
}

function closeDialog(id) {
  const d = $(id);
  if (d.open) d.close();
}

// Seconds of warning: the notification counts in whole minutes (rounded up), which is
// too coarse for a short warning, so use the policy's warnSeconds when it is below a minute.
function warningSeconds(minutes) {
  if (me && me.warnSeconds > 0 && me.warnSeconds < 60) return me.warnSeconds;
  return (Number(minutes) || 1) * 60;
}

function showWarning(minutes) {
  if (state !== 'app') return;
  const deadline = Date.now() + warningSeconds(minutes) * 1000;
  const tick = () => {
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    $('warning-countdown').textContent = String(left);
    $('warning-unit').textContent = left === 1 ? 'second' : 'seconds';
  };
  clearInterval(countdownTimer);
  tick();
  countdownTimer = setInterval(tick, 250);
  openDialog('warning-dialog');
}

function hideWarning() {
  clearInterval(countdownTimer);
  closeDialog('warning-dialog');
}

// ---------------------------------------------------------------- notification socket

function connectSocket() {
  const gen = generation;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const s = new WebSocket(`${proto}//${location.host}/rest/user/timeout/notifications`);
  socket = s;
  s.onopen = () => { if (s === socket) reconnectDelay = RECONNECT_MIN_MS; };
  s.onmessage = (ev) => { if (s === socket) onNotification(ev.data); };
  s.onclose = () => {
    if (s !== socket || gen !== generation) return; // closed by us
    socket = null;
    // Closed by the server (or the network) while we think we are logged in and no
    // logout came: e.g. a server restart. Try again, a little later each time.
    if (state === 'app') {
      reconnectTimer = setTimeout(() => reconnect(gen), reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
    }
  };
}

// Before opening a new socket, ask the passive session endpoint whether the session is
// still there: a 401 ends it (via api()), and the check itself is not activity.
async function reconnect(gen) {
  if (gen !== generation || state !== 'app') return;
  try {
    const { status } = await api('GET', '/api/session?auto=true');
    if (gen !== generation || state !== 'app') return;
    if (status === 200) { connectSocket(); return; }
  } catch { /* server unreachable: try again below */ }
  if (gen !== generation || state !== 'app') return;
  reconnectTimer = setTimeout(() => reconnect(gen), reconnectDelay);
  reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
}

function onNotification(text) {
  let msg;
  try { msg = JSON.parse(text); } catch { return; } // not JSON: ignore
  if (!msg || typeof msg !== 'object') return;
  if (msg.TimeoutNotification) {
    showWarning(msg.TimeoutNotification.minutesUntilTimeout);
  } else if (msg.LogoutNotification) {
    sessionExpired(logoutReason(msg));
  }
  // Anything else: a message from a newer server, ignored.
}

// ---------------------------------------------------------------- passive poll

// GET /api/session?auto=true once a second: shows the time left and notices a timeout
// even without the socket. The auto=true flag tells the server this is not activity.
async function poll() {
  const gen = generation;
  try {
    const { status, data } = await api('GET', '/api/session?auto=true');
    if (gen !== generation) return;
    if (status === 200 && data && typeof data.secondsLeft === 'number') {
      const left = Math.max(0, Math.ceil(data.secondsLeft));
      $('session-left').textContent = `Session ends in ${left} s`;
      // Activity elsewhere (another tab) pushed the deadline back: the warning is stale.
      if (me && data.secondsLeft > me.warnSeconds + 1) hideWarning();
    }
  } catch {
    if (gen === generation) $('session-left').textContent = 'Server unreachable';
  }
  if (gen === generation && state === 'app') pollTimer = setTimeout(poll, POLL_MS);
}

// ---------------------------------------------------------------- notes

async function loadNote() {
  const gen = generation;
  try {
    const { status, data } = await api('GET', '/api/notes');
    // Never overwrite what the user has typed meanwhile (or kept across a re-login).
    if (gen === generation && status === 200 && data && $('note').value === '') {
      $('note').value = typeof data.text === 'string' ? data.text : '';
    }
  } catch { /* the note just stays empty */ }
}

$('note-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const status = $('note-status');
  status.textContent = 'Saving…';
  try {
    const res = await api('POST', '/api/notes', { text: $('note').value });
    status.textContent = res.status === 200 ? 'Saved' : 'Not saved';
  } catch {
    status.textContent = 'Not saved: server unreachable';
  }
});

// ---------------------------------------------------------------- login and logout

// POST /api/login; returns null on success (and enters the session), else an error text.
async function logIn(user, password) {
  try {
    const { status, data } = await api('POST', '/api/login', { user, password });
    if (status === 200 && data && data.user) { enterSession(data); return null; }
    return errorText(data, `Login failed (${status})`);
  } catch {
    return 'Cannot reach the server';
  }
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-submit').disabled = true;
  const err = await logIn($('login-user').value.trim(), $('login-password').value);
  $('login-submit').disabled = false;
  $('login-error').textContent = err || '';
});

// Logging in again in place: the page is not reloaded, so the note keeps its unsaved text.
$('relogin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('relogin-submit').disabled = true;
  const err = await logIn($('relogin-user').value.trim(), $('relogin-password').value);
  $('relogin-submit').disabled = false;
  if (err) {
    $('relogin-error').textContent = err;
  } else {
    closeDialog('relogin-dialog');
    $('note').focus();
  }
});

async function logOut() {
  try { await api('POST', '/api/logout'); } catch { /* leave the page anyway */ }
  showLogin();
}

$('logout').addEventListener('click', logOut);
$('warning-log-out').addEventListener('click', logOut);

$('stay-logged-in').addEventListener('click', async () => {
  try {
    // Counts as activity; a 401 ends the session through api().
    const { status } = await api('GET', '/rest/user/timeout/reset');
    if (status === 200) hideWarning();
  } catch { /* server unreachable: leave the warning up */ }
});

// Escape on the warning closes it and means "I am here": same as "Stay logged in".
$('warning-dialog').addEventListener('cancel', () => $('stay-logged-in').click());

// The re-login dialog cannot be dismissed: there is no session behind it. (The browser
// may still close it on a repeated Escape, whatever cancel does: then open it again.)
$('relogin-dialog').addEventListener('cancel', (ev) => ev.preventDefault());
$('relogin-dialog').addEventListener('close', () => {
  if (state === 'expired') setTimeout(() => openDialog('relogin-dialog'), 0);
});

// ---------------------------------------------------------------- start

(async function start() {
  try {
    const { status, data } = await api('GET', '/api/me');
    if (status === 200 && data && data.user) enterSession(data);
    else showLogin(status === 401 ? logoutReason(data) || '' : `Unexpected answer (${status})`);
  } catch {
    $('loading').textContent = 'Cannot reach the server. Reload to try again.';
  }
})();
