'use strict';
// app.js — the shell: who is logged in, the login form, logout, and the
// routes of the URL hash (#/online, #/users, #/users/42, #/me, #/stats).

let cleanup = null;
let offMine = null; // the header's ear on the stream

// Whether this browser logged in last time: the session cookie is HttpOnly,
// so without this hint a first visit would ask /api/users/me/ only to be
// told 401 (which the browser logs as an error).
const HINT = 'usersd.session';
function hint(on) {
  try {
    if (on === undefined) return localStorage.getItem(HINT) !== null;
    if (on) localStorage.setItem(HINT, '1');
    else localStorage.removeItem(HINT);
  } catch (e) { /* storage refused: ask the server every time */ }
  return true;
}

function main() {
  return document.getElementById('main');
}

function leaveView() {
  if (cleanup) cleanup();
  cleanup = null;
}

function route() {
  if (!App.me) return;
  leaveView();
  const [path, qs] = (location.hash.slice(1) || '/online').split('?');
  const params = new URLSearchParams(qs || '');
  const m = main();
  let view = path.replace(/^\/+/, '').split('/')[0];
  let id = null;
  const userPage = path.match(/^\/users\/(\d+)\/?$/);
  if (userPage) { view = 'user'; id = Number(userPage[1]); }
  if (path === '/me') { view = 'user'; id = App.me.id; }
  if ((view === 'users' || view === 'stats') && !App.staff) view = 'forbidden';
  const titles = { online: 'Online now', users: 'Users', stats: 'Statistics', user: 'User', forbidden: 'Not allowed' };
  if (!(view in titles) || (view === 'users' && path !== '/users' && path !== '/users/')) view = 'missing';
  document.title = (titles[view] || 'Not found') + ' — usersd';
  for (const a of document.querySelectorAll('#nav a')) {
    const here = a.dataset.nav === view || (a.dataset.nav === 'me' && view === 'user' && id === App.me.id);
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (view === 'forbidden' || view === 'missing') {
    m.replaceChildren(h('section', {}, h('h1', { tabindex: '-1' }, view === 'missing' ? 'Not found' : 'Not allowed'),
      h('p', {}, view === 'missing' ? 'There is no such page. ' : 'This page is for staff. ', h('a', { href: '#/online' }, 'See who is online'), '.')));
  } else {
    cleanup = Views[view](m, params, id);
  }
  // Move the focus to the new view's heading, so a screen reader announces it.
  const h1 = m.querySelector('h1');
  if (h1) h1.focus({ preventScroll: true });
}

function loggedIn(me) {
  hint(true);
  App.me = me;
  App.staff = me.is_staff;
  document.getElementById('top').hidden = false;
  document.getElementById('whoami').textContent = me.username;
  // The header: my status, and the controls for it.
  const mine = presenceControls(null);
  const show = () => { document.getElementById('mybadge').replaceChildren(badge(App.me)); mine.show(App.me); };
  const again = throttle(async () => { try { App.me = await usersd.me(); show(); } catch (e) { /* the next change tries */ } }, 300);
  document.getElementById('mine').replaceChildren(document.querySelector('#mine summary'), mine);
  offMine = Live.on((type, d) => {
    if (d.user_id !== App.me.id) return;
    App.me = applyLive(App.me, type, d, again);
    show();
  });
  show();
  for (const a of document.querySelectorAll('#nav [data-staff]')) a.hidden = !App.staff;
  Live.start();
  if (!location.hash || location.hash === '#/login') history.replaceState(null, '', '#/online');
  route();
}

// Back to the login form (logout, a 401, a revoked session), keeping the
// hash so that logging in again returns to the same view.
function sessionEnded(message) {
  leaveView();
  Live.stop();
  if (offMine) offMine();
  hint(false);
  App.me = null;
  App.staff = false;
  showLogin(message);
}

function showLogin(message) {
  document.getElementById('top').hidden = true;
  document.title = 'Log in — usersd';
  const { root, refs } = clone('t-login');
  main().replaceChildren(root);
  if (message) refs.note.textContent = message;
  const form = refs.form;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    refs.note.textContent = '';
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const data = await usersd.login(form.elements.username.value.trim(), form.elements.password.value);
      loggedIn(data.user);
    } catch (err) {
      button.disabled = false;
      showError(form, err);
      if (!form.contains(document.activeElement)) form.elements.password.focus();
    }
  });
  form.elements.username.focus();
}

async function logout() {
  try {
    await usersd.logout();
  } catch (e) {
    if (e.handled) return;
  }
  sessionEnded('You are logged out.');
}

async function boot() {
  try {
    await clientLoaded;
  } catch (e) {
    note(main(), 'The page could not load its API client (/client/usersd.js). Reload the page to try again.', 'error');
    return;
  }
  document.getElementById('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  // The header's menu closes as menus do: Escape (the focus back on its
  // button) or a click elsewhere.
  const menu = document.getElementById('mine');
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || !menu.open) return;
    menu.open = false;
    menu.querySelector('summary').focus();
  });
  document.addEventListener('click', (e) => { if (menu.open && !menu.contains(e.target)) menu.open = false; });
  if (!hint()) {
    showLogin('');
    return;
  }
  try {
    loggedIn(await usersd.me());
  } catch (e) {
    if (e.status === 401) {
      hint(false);
      showLogin('Your session has ended. Please log in again.');
    }
    else note(main(), e.message + ' Reload the page to try again.', 'error');
  }
}

boot();
