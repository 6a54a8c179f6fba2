'use strict';
// lib.js — what every view shares: the API client (usersd.js, imported),
// the live stream, DOM helpers, times and durations, and error display.
// Plain scripts loaded in order (lib, views, app); each view adds itself
// to Views.

const App = { me: null, staff: false };
const Views = {};

// ---- the API: the JavaScript client the server serves ------------------------

// The client (/client/usersd.js, an ES module) is imported by this plain
// script; app.js waits for it before anything calls the API. It uses the
// session cookie; a 401 anywhere but at login means the session is gone:
// back to the form.
let usersd = null;
let UsersdError = null;
const clientLoaded = import('/client/usersd.js').then((m) => {
  UsersdError = m.UsersdError;
  usersd = new m.Usersd({
    onUnauthorized(err) {
      if (!App.me) return;
      err.handled = true;
      sessionEnded('Your session has ended. Please log in again.');
    },
  });
});

// A query string from params, without empty values (for the URL hash).
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v != null) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// ---- the presence stream ---------------------------------------------------

// One presence() of the client for the whole page: it reconnects by itself
// (resuming with Last-Event-ID) and reloads on a resync; the views hear
// each change through Live.on(fn) as fn(type, user) — type presence,
// status_message, dnd or resync.
const Live = {
  presence: null, handlers: new Set(),
  start() {
    if (this.presence) return;
    this.presence = usersd.presence();
    this.presence.onState((s) => setLive(s === 'live' ? 'live' : s === 'closed' ? '' : 'reconnecting'));
    this.presence.onChange((c) => this.dispatch(c.type, c.user || {}));
  },
  stop() {
    if (this.presence) this.presence.close();
    this.presence = null;
    setLive('');
  },
  on(fn) {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  },
  dispatch(type, data) {
    for (const fn of this.handlers) fn(type, data);
  },
};

function setLive(state) {
  const el = document.getElementById('live');
  el.className = 'live ' + state;
  el.textContent = state === 'live' ? 'Live' : state === 'reconnecting' ? 'reconnecting…' : '';
}

// ---- DOM -------------------------------------------------------------------

// h('a', {href: '#/x', class: 'c', onclick: f}, 'text', child...)
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const kid of kids.flat()) {
    if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  for (const kid of kids.flat()) if (kid != null && kid !== false) el.append(kid);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
}

// A copy of a <template>'s content; elements with data-ref are returned by
// name too: const {root, refs} = clone('t-users').
function clone(id) {
  const root = document.getElementById(id).content.firstElementChild.cloneNode(true);
  const refs = {};
  for (const el of root.querySelectorAll('[data-ref]')) refs[el.dataset.ref] = el;
  return { root, refs };
}

// A user's status as every view shows it: the status, "manual" (the key is
// only in what the user themself and staff read) and do not disturb.
function badge(u) {
  const d = u.dnd;
  return h('span', { class: 'st' }, h('span', { class: 'badge ' + u.online_status }, u.online_status),
    u.status_manual ? ' ' : '', u.status_manual ? h('span', { class: 'tag' }, 'manual') : '', d ? ' ' : '',
    d ? h('span', { class: 'badge dnd', title: d.until && exactTime(d.until), 'data-until': d.until || '' },
      dndText(d.until)) : '');
}

// "Do not disturb until 14:30" today, with the date on another day; the
// clock below writes it again, so a badge left open past midnight drops
// the date when its day comes.
function dndText(until, now = Date.now()) {
  if (!until) return 'Do not disturb';
  const d = new Date(until);
  const today = d.toDateString() === new Date(now).toDateString();
  return 'Do not disturb until ' + d.toLocaleString('en-GB', today ? { timeStyle: 'short' } : { dateStyle: 'medium', timeStyle: 'short' });
}

// The user as a view holds it, after a change: `user` (a reply of ours, the
// fields as they now are), `dnd` or `presence`. The stream never says
// whether a status is manual (online never is): on a change, who may know
// (the user, staff: the key is there) reads the user again, with `again`.
function applyLive(u, type, d, again) {
  if (type === 'user') return { ...u, ...d };
  if (type === 'dnd') return { ...u, dnd: d.dnd };
  if (type !== 'presence') return u;
  const n = { ...u, online_status: d.online_status, last_seen: d.last_seen, is_online: d.is_online };
  if ('dnd' in d) n.dnd = d.dnd;
  if ('status_manual' in u && d.online_status !== u.online_status) {
    n.status_manual = false;
    if (d.online_status !== 'online') again();
  }
  return n;
}

function readUser(id, opts) {
  return id === App.me.id ? usersd.me(opts) : usersd.getUser(id, opts);
}

// "Appear away", "Appear offline", "Back online" and "Do not disturb"
// (API.md §12's names) for oneself (id null) or, staff, for a user. What
// changes goes to every view as a `user` change; show(u) follows the user.
function presenceControls(id) {
  const uid = id == null ? App.me.id : id;
  const err = h('p', { class: 'error', role: 'alert', 'data-error-for': 'form' });
  const act = (fn) => async () => {
    err.textContent = '';
    try {
      Live.dispatch('user', { user_id: uid, ...(await fn()) });
    } catch (e) {
      showError(box, e);
    }
  };
  const status = (s, manual) => act(() => (id == null ? usersd.setMyStatus(s, { manual }) : usersd.setOnlineStatus(id, s, { manual })));
  const dnd = (opts) => act(async () => ({ dnd: await usersd.setDnd({ ...opts, userId: id }) }));
  const tomorrow = () => { const t = new Date(); t.setDate(t.getDate() + 1); t.setHours(8, 0, 0, 0); return t; };
  const button = (label, onclick) => h('button', { type: 'button', onclick }, label);
  const off = button('Turn off do not disturb', act(async () => {
    await usersd.clearDnd({ userId: id });
    group.querySelector('button').focus(); // this button goes
    return { dnd: null };
  }));
  const group = h('fieldset', { class: 'dnd' }, h('legend', {}, 'Do not disturb'),
    button('30 minutes', dnd({ minutes: 30 })), button('1 hour', dnd({ minutes: 60 })),
    button('Until tomorrow', (e) => dnd({ until: tomorrow() })(e)), button('Until I turn it off', dnd({})), off);
  const box = h('div', { class: 'controls' },
    h('p', { class: 'actions' }, button('Appear away', status('away', true)), button('Appear offline', status('offline', true)),
      button('Back online', status('online'))), group, err);
  box.show = (u) => { off.hidden = !u.dnd; };
  return box;
}

function fmtNumber(n) {
  return n == null ? '–' : Number(n).toLocaleString('en-US');
}

// ---- times -----------------------------------------------------------------

function ago(iso, now = Date.now()) {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 60) return s > -60 ? 'just now' : 'in the future';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  const d = Math.floor(s / 86400);
  return d === 1 ? '1 day ago' : d + ' days ago';
}

function exactTime(iso) {
  return new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

// "3 min ago" with the exact time on hover; refreshed by the clock below.
function timeEl(iso, never = 'never') {
  if (!iso) return h('span', { class: 'muted' }, never);
  return h('time', { datetime: iso, title: exactTime(iso), 'data-ago': '' }, ago(iso));
}

function timeUntil(iso) {
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  return s <= 0 ? 'now' : 'in ' + duration(s);
}

setInterval(() => {
  const now = Date.now();
  for (const t of document.querySelectorAll('time[data-ago]')) t.textContent = ago(t.dateTime, now);
  for (const b of document.querySelectorAll('.badge.dnd[data-until]')) {
    if (b.dataset.until) b.textContent = dndText(b.dataset.until, now);
  }
}, 20000);

function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min';
  const hours = Math.floor(m / 60);
  if (hours < 48) return hours + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
  const days = Math.floor(hours / 24);
  return days + ' d' + (hours % 24 ? ' ' + (hours % 24) + ' h' : '');
}

// ---- errors next to the control that caused them ---------------------------

// Every control that can fail has a <p class="error" data-error-for=NAME>
// next to it (NAME the API field, or "form" for the form's own), described
// by it via aria-describedby.
function clearErrors(scope) {
  for (const p of scope.querySelectorAll('[data-error-for]')) p.textContent = '';
  for (const el of scope.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

// Shows err's sentence beside the field the API named (its "fields"), else
// beside the form's button; the first bad field gets the focus.
function showError(scope, err, fallback = 'form') {
  if (err.name === 'AbortError') return;
  if (!(err instanceof UsersdError)) throw err; // a bug of ours: let it show
  if (err.handled) return;
  const fields = Object.keys(err.fields);
  let placed = false;
  for (const name of fields) {
    const p = scope.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (!p) continue;
    p.textContent = err.fields[name] || err.message;
    const input = scope.querySelector(`[name="${CSS.escape(name)}"]`);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      if (!placed) input.focus();
    }
    placed = true;
  }
  if (!placed) {
    const p = scope.querySelector(`[data-error-for="${fallback}"]`);
    if (p) p.textContent = err.message;
    else note(scope, err.message, 'error');
  }
}

// A short line in place of something the server cannot give (yet).
function note(parent, text, cls = 'note') {
  parent.replaceChildren(h('p', { class: cls }, text));
}

function unavailable(parent, err, what) {
  if (err.name === 'AbortError') return;
  if (!(err instanceof UsersdError)) throw err;
  if (err.handled) return;
  if (err.status === 404) note(parent, `${what} is not available on this server.`);
  else note(parent, err.message, 'error');
}

// Resolves true when the person confirms (the shared <dialog>).
function confirmAction(text, okLabel) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

function throttle(fn, ms) {
  let timer = 0;
  const t = () => {
    if (timer) return;
    timer = setTimeout(() => { timer = 0; fn(); }, ms);
  };
  t.cancel = () => { clearTimeout(timer); timer = 0; };
  return t;
}

// Previous / "Page X of Y" / Next, for any paginated list.
function pager(nav, pagination, go) {
  const { page, total_pages: pages } = pagination;
  nav.replaceChildren(
    h('button', { type: 'button', disabled: !pagination.has_previous, onclick: () => go(page - 1) }, 'Previous'),
    h('span', {}, `Page ${fmtNumber(page)} of ${fmtNumber(pages)}`),
    h('button', { type: 'button', disabled: !pagination.has_next, onclick: () => go(page + 1) }, 'Next'));
}
