// idle-timeout.js: the browser side of the idle session timeout.
//
// A dependency-free ES module, served by the axum and actix-web adapters at
// /rest/user/timeout/client/idle-timeout.js (with idle-timeout.css beside it):
//
//   <link rel="stylesheet" href="/rest/user/timeout/client/idle-timeout.css">
//   <script type="module">
//     import { IdleTimeout } from '/rest/user/timeout/client/idle-timeout.js';
//     const timeout = new IdleTimeout({ loginUrl: '/api/login', logoutUrl: '/api/logout' });
//     timeout.start({ user: 'alice' });   // once the app knows who is logged in
//   </script>
//
// What it does, in one browser:
// - One tab is the main window (Web Locks; the next one takes over when it
//   closes). Only the main window listens to the server (WebSocket, else
//   Server-Sent Events, else a passive poll; none of it counts as activity)
//   and shows dialogs. It tells the other tabs the outcome over a
//   BroadcastChannel, so a browser with 5 tabs of the app opens 1 socket.
// - The warning counts down from the server's deadline (the passive status
//   answer), not from the browser's clock: "Stay logged in" (Escape too)
//   calls the reset endpoint, "Log out" logs out.
// - At the timeout the page stays as it is, unsaved input included, under
//   "Login to continue" (password: Continue / Switch user) or, with single
//   sign-on, "Session expired" (Renew session in a pop-up / Switch user).
//
// Events (on the IdleTimeout object, CustomEvent with `detail`), in every tab:
//   'warning'   {secondsLeft}   the session is about to expire
//   'stayed'    {}              the warning was answered (or activity elsewhere)
//   'expired'   {reason}        the session timed out; the main window asks to log in
//   'loggedin'  {user}          logged in again (here or in another tab)
//   'loggedout' {reason}        'user' (Log out), 'switch' (Switch user) or 'gone'
//                               (the session ended elsewhere). Unless a listener
//                               calls preventDefault(), the page goes to switchUserUrl.
//   'role'      {main: true}    this tab became the main window
'use strict';

const DEFAULT_LABELS = Object.freeze({
  warningTitle: 'Are you still there?',
  warningText: 'Your session will expire in {time}.',
  stay: 'Stay logged in',
  logOut: 'Log out',
  loginTitle: 'Login to continue',
  user: 'User',
  password: 'Password',
  continue: 'Continue',
  switchUser: 'Switch user',
  expiredTitle: 'Session expired',
  expiredText: 'Renew your session to continue where you left off.',
  renew: 'Renew session',
  renewing: 'Waiting for the identity provider…',
  popupBlocked: 'The sign-in window was blocked: allow pop-ups for this site and try again.',
  notRenewed: 'The session was not renewed. Try again, or switch user.',
  loginFailed: 'Login failed.',
  unreachable: 'Cannot reach the server. Try again in a moment.',
  followerExpired: 'Your session has ended. Log in again in the main window of this app.',
  defaultReason: 'Logged out due to session timeout',
  // {n}: a number of seconds or minutes.
  seconds: (n) => (n === 1 ? '1 second' : `${n} seconds`),
  minutes: (n) => (n === 1 ? '1 minute' : `${n} minutes`),
});

const DEFAULTS = Object.freeze({
  base: '/rest/user/timeout',
  loginUrl: '/api/login',
  logIn: null,            // async ({user, password}) => ({ok, error}), instead of loginUrl
  ssoRenewUrl: null,      // set: single sign-on, "Session expired" with "Renew session"
  logoutUrl: '/api/logout',
  switchUserUrl: '/',
  mainWindow: 'elect',    // 'elect' (one per browser), 'always', or 'never' (a secondary window)
  channel: 'idle-timeout',
  transports: ['websocket', 'sse', 'poll'],
  pollSeconds: 15,
  root: null,             // where the dialogs go; document.body by default
});

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30000;
// A transport that fails this many times in a row without ever opening is
// given up for the next one (WebSocket, then SSE, then polling).
const FAILURES_BEFORE_FALLBACK = 3;
const COUNTDOWN_TICK_MS = 250;
const WARNING_RESYNC_MS = 1000;
const RENEW_WATCH_MS = 400;
// Every this many watches of the pop-up, the status is asked too.
const RENEW_CHECK_EVERY = 3;
// Where the polite screen-reader announcement of the countdown speaks again.
const ANNOUNCE_AT = [300, 120, 60, 30, 10];

export class IdleTimeout extends EventTarget {
  constructor(options = {}) {
    super();
    const opts = { ...DEFAULTS, ...options };
    const base = String(opts.base).replace(/\/+$/, '');
    this.options = opts;
    this.labels = { ...DEFAULT_LABELS, ...(options.labels || {}) };
    this.paths = {
      status: `${base}/status`,
      reset: `${base}/reset`,
      notifications: `${base}/notifications`,
      events: `${base}/events`,
      ...(options.paths || {}),
    };
    this.sso = Boolean(opts.ssoRenewUrl);
    this.state = 'stopped';  // stopped | active | warning | expired | loggedout
    this.user = null;
    this.reason = '';
    this.main = false;
    this.transport = null;   // 'websocket' | 'sse' | 'poll' while the main window listens
    this.warnSeconds = null;
    this._gen = 0;           // bumped on every state change: late answers are dropped
    this._timers = new Set();
    this._channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(opts.channel) : null;
    if (this._channel) this._channel.onmessage = (ev) => this._fromTab(ev.data);
    this._dialogs = null;
    this._lockAbort = null;
  }

  // ------------------------------------------------------------ public API

  // The app knows a user is logged in (page load): start listening.
  start(info = {}) {
    this._setUser(info.user);
    this._enter('active');
    this._elect();
    if (this.main) this._listen();
  }

  // The app logged a user in here (its own login form): like start, and the
  // other tabs follow.
  loggedIn(info = {}) {
    this.start(info);
    this._tell({ type: 'loggedin', user: this.user });
  }

  // Logs out (POST logoutUrl) here and in every tab.
  async logOut(reason = 'user') {
    await this._postLogout();
    this._tell({ type: 'loggedout', reason });
    this._loggedOut(reason);
  }

  // The app got a 401 on one of its own requests: find out from the server
  // (the main window does; another tab asks it).
  unauthorized() {
    if (!this._listening()) return;
    if (this.main) this._check();
    else this._tell({ type: 'check' });
  }

  // Stops listening and closes the dialogs; the tab keeps its role.
  stop() {
    this._enter('stopped');
    this._closeAll();
  }

  // Stops everything and gives up the main window to another tab.
  destroy() {
    this.stop();
    if (this._lockAbort) this._lockAbort();
    this._lockAbort = null;
    if (this._channel) this._channel.close();
    this._channel = null;
    if (this._dialogs) this._dialogs.root.remove();
    this._dialogs = null;
  }

  // ------------------------------------------------------------ main window

  _elect() {
    if (this._electing) return;
    this._electing = true;
    const mode = this.options.mainWindow;
    if (mode === 'never') return;
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    if (mode === 'always' || !locks || typeof locks.request !== 'function') {
      // Without Web Locks (an insecure origin, an old browser) every tab is
      // its own main window: more sockets, the same behaviour.
      this._becomeMain();
      return;
    }
    const waiting = new AbortController();
    this._lockAbort = () => waiting.abort();
    locks.request(`${this.options.channel}:main`, { signal: waiting.signal }, () => new Promise((release) => {
      this._lockAbort = release;
      this._becomeMain();
    })).catch(() => { /* aborted by destroy() */ });
  }

  _becomeMain() {
    if (this.main) return;
    this.main = true;
    this._emit('role', { main: true });
    // Take over whatever the previous main window was showing.
    if (this.state === 'active' || this.state === 'warning') this._listen();
    else if (this.state === 'expired') this._showExpired(this.reason);
  }

  _tell(message) {
    if (this._channel) this._channel.postMessage(message);
  }

  _fromTab(msg) {
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'check':
        if (this.main && this._listening()) this._check();
        break;
      case 'warning':
        if (!this.main && this.state === 'active') {
          this._enter('warning');
          this._emit('warning', { secondsLeft: msg.secondsLeft });
        }
        break;
      case 'stayed':
        if (!this.main && this.state === 'warning') {
          this._enter('active');
          this._emit('stayed', {});
        }
        break;
      case 'expired':
        if (this.state === 'active' || this.state === 'warning') this._expired(msg.reason, false);
        break;
      case 'loggedin':
        this._reloggedIn(msg.user, false);
        break;
      case 'loggedout':
        if (this.state !== 'loggedout' && this.state !== 'stopped') this._loggedOut(msg.reason || 'gone');
        break;
      default:
        break; // from a newer version of this file
    }
  }

  // ------------------------------------------------------------ states

  _enter(state) {
    this._gen++;
    this.state = state;
    for (const timer of this._timers) clearTimeout(timer);
    this._timers.clear();
    this._closeTransport();
  }

  _listening() {
    return this.state === 'active' || this.state === 'warning';
  }

  _setUser(user) {
    if (typeof user === 'string' && user) this.user = user;
  }

  _warning(secondsLeft) {
    const first = this.state !== 'warning';
    if (first) {
      this.state = 'warning';
      this._emit('warning', { secondsLeft });
      this._tell({ type: 'warning', secondsLeft });
    }
    this._showWarning(secondsLeft);
    // Count down from the server's deadline, read again every second: it
    // also notices activity in another tab, which ends the warning.
    clearTimeout(this._resync);
    this._resync = this._later(() => this._check(), WARNING_RESYNC_MS);
  }

  _stayed(tell) {
    if (this.state !== 'warning') return;
    this.state = 'active';
    this._close('warning');
    this._emit('stayed', {});
    if (tell) this._tell({ type: 'stayed' });
  }

  _expired(reason, tell) {
    if (!this._listening()) return;
    this.reason = reason || this.labels.defaultReason;
    this._enter('expired');
    this._close('warning');
    this._emit('expired', { reason: this.reason });
    if (tell) this._tell({ type: 'expired', reason: this.reason });
    if (this.main) this._showExpired(this.reason);
    else this._banner(this.labels.followerExpired);
  }

  _reloggedIn(user, tell) {
    if (this.user && user && user !== this.user && this.state === 'expired') {
      // Somebody else logged in: this page's unsaved work is not theirs.
      this._loggedOut('switch');
      return;
    }
    this._setUser(user);
    this._closeAll();
    this._enter('active');
    this._emit('loggedin', { user: this.user });
    if (tell) this._tell({ type: 'loggedin', user: this.user });
    // A tab that was on the login screen joins the election now.
    this._elect();
    if (this.main) this._listen();
  }

  _loggedOut(reason) {
    this._enter('loggedout');
    this._closeAll();
    const proceed = this._emit('loggedout', { reason }, true);
    if (proceed) location.assign(this.options.switchUserUrl);
  }

  // ------------------------------------------------------------ server

  async _fetch(method, path, body) {
    const res = await fetch(path, {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch { /* empty or not JSON */ }
    return { status: res.status, data };
  }

  // Reads the passive status and acts on it; `warned`: the server just sent
  // the warning; `catchUp`: the tab was not listening until now (it just
  // became the main window, or its connection dropped) and may have missed
  // it. Returns the answer, or null when the server could not be reached.
  async _check(warned = false, catchUp = false) {
    const gen = this._gen;
    let answer;
    try {
      answer = await this._fetch('GET', this.paths.status);
    } catch {
      return null;
    }
    if (gen !== this._gen) return answer;
    const { status, data } = answer;
    if (status === 200 && data) {
      if (typeof data.warnSeconds === 'number') this.warnSeconds = data.warnSeconds;
      const left = typeof data.secondsLeft === 'number' ? data.secondsLeft : null;
      if (left === null) {
        this._stayed(true);
      } else if (this.state === 'warning') {
        if (left > (this.warnSeconds || 0) + 1) this._stayed(true); // activity elsewhere
        else this._warning(left);
      } else if (warned ? left <= (this.warnSeconds || 0) + 1
        : (catchUp || this.transport === 'poll') && left <= (this.warnSeconds || 0)) {
        this._warning(left);
      }
    } else if (status === 401) {
      const reason = logoutReason(data);
      if (reason) this._expired(reason, true);
      else if (this._listening()) {
        this._tell({ type: 'loggedout', reason: 'gone' });
        this._loggedOut('gone');
      }
    }
    return answer;
  }

  async _postLogout() {
    try { await this._fetch('POST', this.options.logoutUrl); } catch { /* leave anyway */ }
  }

  _onNotification(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (!msg || typeof msg !== 'object') return;
    if (msg.TimeoutNotification) {
      const minutes = Number(msg.TimeoutNotification.minutesUntilTimeout) || 1;
      // The minutes are rounded: ask the server for the deadline itself.
      this._check(true).then((answer) => {
        if (this.state !== 'active' || (answer && answer.status === 200)) return;
        const lead = this.warnSeconds && this.warnSeconds < minutes * 60 ? this.warnSeconds : minutes * 60;
        this._warning(lead);
      });
    } else if (msg.LogoutNotification) {
      this._expired(logoutReason(msg), true);
    }
  }

  // ------------------------------------------------------------ transports

  _listen() {
    this._failures = 0;
    this._delay = RECONNECT_MIN_MS;
    this._check(false, true).then(() => {
      if (this._listening() && this.main && !this.transport) this._open(this._firstTransport());
    });
  }

  _firstTransport() {
    return this._nextTransport(null);
  }

  _nextTransport(after) {
    const order = this.options.transports;
    const start = after === null ? 0 : order.indexOf(after) + 1;
    for (const kind of order.slice(start)) {
      if (kind === 'websocket' && typeof WebSocket === 'function') return kind;
      if (kind === 'sse' && typeof EventSource === 'function') return kind;
      if (kind === 'poll') return kind;
    }
    return 'poll';
  }

  _open(kind) {
    this._closeTransport();
    this.transport = kind;
    const gen = this._gen;
    if (kind === 'websocket') {
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const socket = new WebSocket(`${proto}//${location.host}${this.paths.notifications}`);
      let opened = false;
      socket.onopen = () => { opened = true; this._opened(); };
      socket.onmessage = (ev) => { if (gen === this._gen) this._onNotification(ev.data); };
      socket.onclose = () => { if (this._socket === socket) this._dropped(gen, opened); };
      this._socket = socket;
    } else if (kind === 'sse') {
      const source = new EventSource(this.paths.events, { withCredentials: true });
      let opened = false;
      source.onopen = () => { opened = true; this._opened(); };
      source.onmessage = (ev) => { if (gen === this._gen) this._onNotification(ev.data); };
      source.onerror = () => {
        // EventSource reconnects by itself unless the answer was not a
        // stream (a 401 after the logout): then it is closed.
        if (this._source !== source) return;
        if (source.readyState === EventSource.CLOSED || !opened) this._dropped(gen, opened);
      };
      this._source = source;
    } else {
      const every = Math.max(1, Math.min(this.options.pollSeconds, (this.warnSeconds || 60) / 3));
      const tick = () => {
        if (gen !== this._gen) return;
        this._check().finally(() => { if (gen === this._gen) this._later(tick, every * 1000); });
      };
      this._later(tick, every * 1000);
    }
  }

  _opened() {
    this._failures = 0;
    this._delay = RECONNECT_MIN_MS;
  }

  // The connection closed while this tab still listens: the server logged
  // the session out (the status says so), restarted, or is unreachable.
  _dropped(gen, opened) {
    const kind = this.transport;
    this._closeTransport();
    if (gen !== this._gen || !this._listening()) return;
    if (!opened) this._failures++;
    const next = this._failures >= FAILURES_BEFORE_FALLBACK ? this._nextTransport(kind) : kind;
    if (next !== kind) this._failures = 0;
    const delay = this._delay * (0.8 + Math.random() * 0.4);
    this._delay = Math.min(this._delay * 2, RECONNECT_MAX_MS);
    this._later(async () => {
      await this._check(false, true);
      if (gen === this._gen && this._listening() && this.main) this._open(next);
    }, delay);
  }

  _closeTransport() {
    const socket = this._socket;
    const source = this._source;
    this._socket = null;
    this._source = null;
    this.transport = null;
    if (socket) socket.close();
    if (source) source.close();
  }

  _later(fn, ms) {
    const timer = setTimeout(() => { this._timers.delete(timer); fn(); }, ms);
    this._timers.add(timer);
    return timer;
  }

  _emit(type, detail, cancelable = false) {
    return this.dispatchEvent(new CustomEvent(type, { detail, cancelable }));
  }

  // ------------------------------------------------------------ dialogs

  _ui() {
    if (this._dialogs) return this._dialogs;
    const L = this.labels;
    const root = document.createElement('div');
    root.className = 'idle-timeout';
    root.innerHTML = `
      <dialog id="idle-timeout-warning" class="idle-timeout-dialog" aria-labelledby="idle-timeout-warning-title"
              aria-describedby="idle-timeout-warning-text">
        <h2 id="idle-timeout-warning-title"></h2>
        <p id="idle-timeout-warning-text"></p>
        <p id="idle-timeout-announce" class="idle-timeout-sr" aria-live="polite" aria-atomic="true"></p>
        <div class="idle-timeout-buttons">
          <button id="idle-timeout-stay" type="button" autofocus></button>
          <button id="idle-timeout-logout" type="button" class="idle-timeout-secondary"></button>
        </div>
      </dialog>
      <dialog id="idle-timeout-login" class="idle-timeout-dialog" aria-labelledby="idle-timeout-login-title"
              aria-describedby="idle-timeout-login-reason">
        <form id="idle-timeout-login-form" method="dialog">
          <h2 id="idle-timeout-login-title"></h2>
          <p id="idle-timeout-login-reason"></p>
          <label for="idle-timeout-login-user"></label>
          <input id="idle-timeout-login-user" name="user" autocomplete="username" readonly>
          <label for="idle-timeout-login-password"></label>
          <input id="idle-timeout-login-password" name="password" type="password"
                 autocomplete="current-password" required autofocus>
          <p id="idle-timeout-login-error" class="idle-timeout-error" role="alert"></p>
          <div class="idle-timeout-buttons">
            <button id="idle-timeout-continue" type="submit"></button>
            <button id="idle-timeout-login-switch" type="button" class="idle-timeout-secondary"></button>
          </div>
        </form>
      </dialog>
      <dialog id="idle-timeout-expired" class="idle-timeout-dialog" aria-labelledby="idle-timeout-expired-title"
              aria-describedby="idle-timeout-expired-text">
        <h2 id="idle-timeout-expired-title"></h2>
        <p id="idle-timeout-expired-reason"></p>
        <p id="idle-timeout-expired-text"></p>
        <p id="idle-timeout-expired-error" class="idle-timeout-error" role="alert"></p>
        <div class="idle-timeout-buttons">
          <button id="idle-timeout-renew" type="button" autofocus></button>
          <button id="idle-timeout-expired-switch" type="button" class="idle-timeout-secondary"></button>
        </div>
      </dialog>
      <div id="idle-timeout-banner" class="idle-timeout-banner" role="status" hidden></div>`;
    const $ = (id) => root.querySelector(`#idle-timeout-${id}`);
    const text = { 'warning-title': L.warningTitle, stay: L.stay, logout: L.logOut,
      'login-title': L.loginTitle, continue: L.continue, 'login-switch': L.switchUser,
      'expired-title': L.expiredTitle, 'expired-text': L.expiredText, renew: L.renew,
      'expired-switch': L.switchUser };
    for (const [id, value] of Object.entries(text)) $(id).textContent = value;
    root.querySelector('label[for="idle-timeout-login-user"]').textContent = L.user;
    root.querySelector('label[for="idle-timeout-login-password"]').textContent = L.password;
    (this.options.root || document.body).append(root);

    const ui = { root, $, warning: $('warning'), login: $('login'), expired: $('expired'),
      banner: $('banner'), deadline: 0, announced: Infinity, countdown: null };
    this._dialogs = ui;

    $('stay').addEventListener('click', () => this._stay());
    $('logout').addEventListener('click', () => this.logOut('user'));
    $('login-form').addEventListener('submit', (ev) => { ev.preventDefault(); this._continue(); });
    $('login-switch').addEventListener('click', () => this._switchUser());
    $('expired-switch').addEventListener('click', () => this._switchUser());
    $('renew').addEventListener('click', () => this._renew());
    // Escape on the warning means "I am here".
    ui.warning.addEventListener('cancel', (ev) => { ev.preventDefault(); this._stay(); });
    for (const dialog of [ui.login, ui.expired]) {
      // Nothing is behind these two but a session that ended: they stay.
      dialog.addEventListener('cancel', (ev) => ev.preventDefault());
      dialog.addEventListener('close', () => {
        if (this.state === 'expired' && this.main && dialog === this._expiredDialog()) {
          setTimeout(() => this._show(dialog), 0);
        }
      });
    }
    for (const dialog of [ui.warning, ui.login, ui.expired]) {
      dialog.addEventListener('keydown', (ev) => trapTab(dialog, ev));
    }
    return ui;
  }

  _expiredDialog() {
    const ui = this._ui();
    return this.sso ? ui.expired : ui.login;
  }

  // A modal <dialog> makes the rest of the page inert, and gives the focus
  // back to where it was when it closes.
  _show(dialog) {
    if (!dialog.open) dialog.showModal();
  }

  _close(which) {
    const ui = this._dialogs;
    if (!ui) return;
    const dialog = ui[which];
    if (which === 'warning') clearInterval(ui.countdown);
    if (dialog && dialog.open) dialog.close();
  }

  _closeAll() {
    const ui = this._dialogs;
    if (!ui) return;
    ui.banner.hidden = true;
    // The expired dialogs reopen themselves on close while expired: leave
    // that state first (callers have).
    this._close('warning');
    this._close('login');
    this._close('expired');
  }

  _banner(text) {
    const ui = this._ui();
    ui.banner.textContent = text;
    ui.banner.hidden = false;
  }

  _showWarning(secondsLeft) {
    const ui = this._ui();
    ui.deadline = performance.now() + Math.max(0, secondsLeft) * 1000;
    const tick = () => {
      const left = Math.max(0, Math.ceil((ui.deadline - performance.now()) / 1000));
      ui.$('warning-text').textContent = this.labels.warningText.replace('{time}', this._duration(left));
      const mark = ANNOUNCE_AT.find((at) => left <= at && at < ui.announced);
      if (ui.announced === Infinity || mark !== undefined) {
        ui.announced = mark !== undefined ? mark : left;
        ui.$('announce').textContent = this.labels.warningText.replace('{time}', this._duration(left));
      }
    };
    if (!ui.warning.open) ui.announced = Infinity;
    clearInterval(ui.countdown);
    tick();
    ui.countdown = setInterval(tick, COUNTDOWN_TICK_MS);
    this._show(ui.warning);
  }

  _duration(seconds) {
    if (seconds < 120) return this.labels.seconds(seconds);
    return this.labels.minutes(Math.ceil(seconds / 60));
  }

  _showExpired(reason) {
    const ui = this._ui();
    ui.banner.hidden = true;
    if (this.sso) {
      ui.$('expired-reason').textContent = reason;
      ui.$('expired-error').textContent = '';
      ui.$('renew').disabled = false;
      this._show(ui.expired);
    } else {
      ui.$('login-reason').textContent = reason;
      ui.$('login-user').value = this.user || '';
      ui.$('login-user').readOnly = Boolean(this.user);
      ui.$('login-password').value = '';
      ui.$('login-error').textContent = '';
      this._show(ui.login);
      (this.user ? ui.$('login-password') : ui.$('login-user')).focus();
    }
  }

  async _stay() {
    const gen = this._gen;
    try {
      const { status, data } = await this._fetch('GET', this.paths.reset);
      if (gen !== this._gen) return;
      if (status === 200) this._stayed(true);
      else if (status === 401) {
        const reason = logoutReason(data);
        if (reason) this._expired(reason, true);
        else this._loggedOut('gone');
      }
    } catch { /* unreachable: the warning stays and keeps counting */ }
  }

  async _continue() {
    const ui = this._ui();
    const user = ui.$('login-user').value.trim();
    const password = ui.$('login-password').value;
    const button = ui.$('continue');
    button.disabled = true;
    let result;
    try {
      result = await this._logIn(user, password);
    } catch {
      result = { ok: false, error: this.labels.unreachable };
    }
    button.disabled = false;
    if (!result.ok) {
      ui.$('login-error').textContent = result.error || this.labels.loginFailed;
      ui.$('login-password').select();
      return;
    }
    this._reloggedIn(user, true);
  }

  async _logIn(user, password) {
    if (typeof this.options.logIn === 'function') return this.options.logIn({ user, password });
    const { status, data } = await this._fetch('POST', this.options.loginUrl, { user, password });
    if (status >= 200 && status < 300) return { ok: true };
    return { ok: false, error: data && typeof data.error === 'string' ? data.error : `${this.labels.loginFailed} (${status})` };
  }

  async _switchUser() {
    this._tell({ type: 'loggedout', reason: 'switch' });
    await this._postLogout();
    this._loggedOut('switch');
  }

  // Single sign-on: the identity provider runs in a pop-up, so this page and
  // its unsaved input stay as they are. The pop-up's last page calls
  // completeRenewal() (or just closes); then the status tells who is in.
  _renew() {
    const ui = this._ui();
    const gen = this._gen;
    const popup = window.open(this.options.ssoRenewUrl, 'idle-timeout-renew', 'popup=yes,width=520,height=640');
    if (!popup) {
      ui.$('expired-error').textContent = this.labels.popupBlocked;
      return;
    }
    ui.$('renew').disabled = true;
    ui.$('expired-error').textContent = this.labels.renewing;
    let done = false;
    const finish = async (answer) => {
      if (done || gen !== this._gen) return;
      done = true;
      window.removeEventListener('message', onMessage);
      // The pop-up's last page closes itself; if its script could not, the
      // page that opened it may.
      try { popup.close(); } catch { /* already gone */ }
      const status = answer || await this._statusAfterRenewal();
      if (gen !== this._gen) return;
      if (status && status.status === 200 && status.data) {
        this._reloggedIn(status.data.user, true);
      } else {
        ui.$('renew').disabled = false;
        ui.$('expired-error').textContent = status ? this.labels.notRenewed : this.labels.unreachable;
      }
    };
    const onMessage = (ev) => {
      if (ev.origin === location.origin && ev.data && ev.data.idleTimeout === 'renewed') finish();
    };
    window.addEventListener('message', onMessage);
    // Until the pop-up says so or closes, the (passive) status tells when
    // the session is back: the dialog closes then even if the pop-up's
    // page never reports.
    let checks = 0;
    const watch = async () => {
      if (done || gen !== this._gen) return;
      if (popup.closed) return finish();
      if (++checks % RENEW_CHECK_EVERY === 0) {
        const answer = await this._statusAfterRenewal();
        if (answer && answer.status === 200 && answer.data) return finish(answer);
      }
      if (!done && gen === this._gen) this._later(watch, RENEW_WATCH_MS);
    };
    this._later(watch, RENEW_WATCH_MS);
  }

  async _statusAfterRenewal() {
    try { return await this._fetch('GET', this.paths.status); } catch { return null; }
  }
}

// The last page of the single sign-on pop-up calls this: it tells the page
// that opened it that the session was renewed, and closes the pop-up.
// Returns false when the page was not opened as a pop-up (a full-page
// login): go on to the app then.
export function completeRenewal() {
  const opener = window.opener;
  if (!opener || opener.closed) return false;
  try {
    opener.postMessage({ idleTimeout: 'renewed' }, location.origin);
  } catch {
    return false;
  }
  window.close();
  return true;
}

function logoutReason(data) {
  const n = data && typeof data === 'object' ? data.LogoutNotification : null;
  if (!n) return null;
  return typeof n.reason === 'string' && n.reason ? n.reason : DEFAULT_LABELS.defaultReason;
}

// A modal dialog already makes the rest of the page inert; this keeps Tab
// cycling inside the dialog instead of leaving for the browser's own UI.
function trapTab(dialog, ev) {
  if (ev.key !== 'Tab') return;
  const focusable = [...dialog.querySelectorAll('button, input, select, textarea, a[href], [tabindex]')]
    .filter((el) => !el.disabled && el.tabIndex >= 0 && el.getClientRects().length > 0);
  if (focusable.length === 0) return;
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  if (ev.shiftKey && document.activeElement === first) {
    ev.preventDefault();
    last.focus();
  } else if (!ev.shiftKey && document.activeElement === last) {
    ev.preventDefault();
    first.focus();
  }
}

export { DEFAULT_LABELS };
