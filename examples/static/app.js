// The demo's own page logic: its login screen and its notes. Everything
// about the idle timeout (the warning, "Login to continue", "Session
// expired", one main window per browser) comes from the client module the
// middleware serves.
import { IdleTimeout } from '/rest/user/timeout/client/idle-timeout.js';

const $ = (id) => document.getElementById(id);

let demo = { login: 'password' }; // from /api/demo
let timeout = null;

// Calls the demo's API; a 401 is reported to the timeout client, which asks
// the server what happened (timed out, or logged out elsewhere).
async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch { /* empty */ }
  if (res.status === 401 && path !== '/api/login' && timeout) timeout.unauthorized();
  return { status: res.status, data };
}

function showLogin(message = '') {
  $('loading').hidden = true;
  $('app').hidden = true;
  $('note').value = '';
  $('note-status').textContent = '';
  if (demo.login === 'sso') {
    $('sso-login').hidden = false;
    $('sso-error').textContent = message;
  } else {
    $('login-form').hidden = false;
    $('login-error').textContent = message;
    $('login-password').value = '';
    $('login-user').focus();
  }
}

function showApp(user) {
  $('loading').hidden = true;
  $('login-form').hidden = true;
  $('sso-login').hidden = true;
  $('user-name').textContent = user;
  $('session-state').textContent = '';
  $('app').hidden = false;
  loadNote();
}

async function loadNote() {
  try {
    const { status, data } = await api('GET', '/api/notes');
    // Never overwrite what the user typed (or kept across a re-login).
    if (status === 200 && data && $('note').value === '') {
      $('note').value = typeof data.text === 'string' ? data.text : '';
    }
  } catch { /* the note just stays empty */ }
}

$('note-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('note-status').textContent = 'Saving…';
  try {
    const res = await api('POST', '/api/notes', { text: $('note').value });
    $('note-status').textContent = res.status === 200 ? 'Saved' : 'Not saved';
  } catch {
    $('note-status').textContent = 'Not saved: server unreachable';
  }
});

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-submit').disabled = true;
  try {
    const user = $('login-user').value.trim();
    const { status, data } = await api('POST', '/api/login', { user, password: $('login-password').value });
    if (status === 200 && data && data.user) {
      showApp(data.user);
      timeout.loggedIn({ user: data.user });
    } else {
      $('login-error').textContent = (data && data.error) || `Login failed (${status})`;
    }
  } catch {
    $('login-error').textContent = 'Cannot reach the server';
  }
  $('login-submit').disabled = false;
});

$('logout').addEventListener('click', () => timeout.logOut());

(async function start() {
  try {
    demo = (await api('GET', '/api/demo')).data || demo;
    timeout = new IdleTimeout({
      loginUrl: '/api/login',
      logoutUrl: '/api/logout',
      ssoRenewUrl: demo.login === 'sso' ? '/sso/start' : null,
      switchUserUrl: '/',
    });
    // Logged out here or in another tab: the login screen, without a
    // reload. "Switch user" lets the client go to '/' (a fresh page).
    timeout.addEventListener('loggedout', (ev) => {
      if (ev.detail.reason === 'switch') return;
      ev.preventDefault();
      showLogin();
    });
    timeout.addEventListener('loggedin', (ev) => showApp(ev.detail.user));
    timeout.addEventListener('expired', () => { $('session-state').textContent = 'Session ended'; });
    timeout.addEventListener('stayed', () => { $('session-state').textContent = ''; });

    const { status, data } = await api('GET', '/api/me');
    if (status === 200 && data && data.user) {
      showApp(data.user);
      timeout.start({ user: data.user });
    } else {
      showLogin(status === 401 ? '' : `Unexpected answer (${status})`);
    }
  } catch {
    $('loading').textContent = 'Cannot reach the server. Reload to try again.';
  }
})();
