'use strict';
// user.js — one user's page: status and status message (set or cleared),
// the presence history as a timeline with time-in-status totals, the
// sessions (revoke), and for staff: edit, deactivate, delete. A person who
// is not staff sees only their own page.

const RANGES = { '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };

Views.user = function (main, params, id) {
  const self = App.me && id === App.me.id;
  if (!App.staff && !self) {
    main.replaceChildren(h('section', {}, h('h1', { tabindex: '-1' }, 'Not allowed'),
      h('p', {}, 'You can see only your own page. ', h('a', { href: '#/users/' + App.me.id }, 'Go to your page'), '.')));
    return null;
  }
  const { root, refs } = clone('t-user');
  main.replaceChildren(root);
  let user = null;
  let range = params.get('range') in RANGES ? params.get('range') : '24h';
  const ctl = new AbortController();
  const whose = self ? {} : { userId: id }; // the status message: mine, or (staff) theirs
  const controls = presenceControls(self ? null : id);
  refs.controls.replaceChildren(controls);

  function showUser(u) {
    user = u;
    document.title = u.username + ' — usersd';
    refs.name.textContent = u.username;
    refs.badge.replaceChildren(badge(u));
    controls.show(u);
    const full = [u.first_name, u.last_name].filter(Boolean).join(' ');
    refs.facts.replaceChildren(
      fact('Name', full || h('span', { class: 'muted' }, 'not given')),
      fact('Email', u.email || h('span', { class: 'muted' }, 'not given')),
      fact('Last seen', timeEl(u.last_seen)),
      fact('Joined', timeEl(u.date_joined)),
      fact('Account', [u.is_active ? 'active' : 'inactive', u.is_staff ? ', staff' : '']));
    refs.statusForm.elements.status.value = u.online_status;
    showMessage(u.status_message);
    if (App.staff) fillEdit(u);
  }

  function fact(label, value) {
    return h('div', {}, h('dt', {}, label), h('dd', {}, value));
  }

  function showMessage(m) {
    if (user && !('status_message' in user)) {
      refs.messageNow.textContent = '';
      note(refs.messageBox, 'Status messages are not available on this server.');
      return;
    }
    refs.messageNow.replaceChildren(m
      ? h('span', {}, '“' + m.text + '”', m.expires_at ? h('span', { class: 'muted' }, ' — clears ', h('time', { datetime: m.expires_at, title: exactTime(m.expires_at) }, timeUntil(m.expires_at))) : '')
      : h('span', { class: 'muted' }, 'No status message.'));
    refs.clearMessage.hidden = !m;
  }

  async function load() {
    try {
      showUser(await readUser(id, { signal: ctl.signal }));
    } catch (e) {
      if (e.handled || e.name === 'AbortError') return;
      main.replaceChildren(h('section', {}, h('h1', { tabindex: '-1' }, 'User not found'),
        h('p', { class: 'error' }, e.message), h('p', {}, h('a', { href: '#/users' }, 'Back to the users'))));
      return;
    }
    loadHistory();
    loadSessions();
  }

  // ---- status and status message
  refs.statusForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(refs.statusForm);
    const status = refs.statusForm.elements.status.value;
    try {
      const r = await usersd.setOnlineStatus(id, status);
      Live.dispatch('user', { ...r, is_online: r.online_status === 'online' });
      refs.statusDone.textContent = r.message + '.';
    } catch (err) {
      showError(refs.statusForm, err);
    }
  });

  refs.messageForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = refs.messageForm;
    clearErrors(f);
    const expiresIn = f.elements.expires_in.value ? Number(f.elements.expires_in.value) : undefined;
    try {
      const m = await usersd.setStatusMessage(f.elements.text.value.trim(), { ...whose, expiresIn });
      user.status_message = m;
      showMessage(m);
      f.reset();
    } catch (err) {
      if (err.status === 404 && !Object.keys(err.fields).length) err.message = 'Status messages are not available on this server.';
      showError(f, err);
    }
  });

  refs.clearMessage.addEventListener('click', async () => {
    clearErrors(refs.messageForm);
    try {
      await usersd.clearStatusMessage(whose);
      user.status_message = null;
      showMessage(null);
    } catch (err) {
      showError(refs.messageForm, err);
    }
  });

  // ---- presence history
  for (const b of refs.ranges.querySelectorAll('button')) {
    b.setAttribute('aria-pressed', String(b.value === range));
    b.addEventListener('click', () => {
      range = b.value;
      for (const o of refs.ranges.querySelectorAll('button')) o.setAttribute('aria-pressed', String(o === b));
      history.replaceState(null, '', `#/users/${id}?range=${range}`);
      loadHistory();
    });
  }

  async function loadHistory() {
    const to = Date.now();
    const from = to - RANGES[range] * 1000;
    try {
      const data = await usersd.getPresenceHistory(id, { from: new Date(from), to: new Date(to), signal: ctl.signal });
      drawTimeline(refs.history, data);
    } catch (e) {
      unavailable(refs.history, e, 'Presence history');
    }
  }

  // ---- sessions
  async function loadSessions() {
    try {
      const data = await (self ? usersd.getMySessions({ signal: ctl.signal }) : usersd.getUserSessions(id, { signal: ctl.signal }));
      showSessions(data.sessions);
    } catch (e) {
      unavailable(refs.sessions, e, 'The session list');
    }
  }

  function showSessions(list) {
    const table = h('table', { class: 'list' },
      h('caption', { class: 'vh' }, 'Sessions'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'wide' }, 'Device'), h('th', { scope: 'col', class: 'opt' }, 'Address'),
        h('th', { scope: 'col', class: 'opt' }, 'Signed in'), h('th', { scope: 'col' }, 'Last used'), self ? h('th', { scope: 'col' }, h('span', { class: 'vh' }, 'Actions')) : null)),
      h('tbody', {}, list.map((s) => h('tr', {},
        h('td', { title: s.user_agent || '' }, device(s.user_agent), s.current ? h('strong', {}, ' (this browser)') : ''),
        h('td', { class: 'opt' }, s.client_ip || ''),
        h('td', { class: 'opt' }, timeEl(s.created)),
        h('td', {}, timeEl(s.last_used)),
        self ? h('td', {}, h('button', { type: 'button', onclick: (e) => revoke(s, e.target) }, 'Revoke'),
          h('p', { class: 'error', 'data-error-for': 'session-' + s.id })) : null))));
    const all = self
      ? h('button', { type: 'button', onclick: logoutAll }, 'Log out everywhere')
      : h('button', { type: 'button', onclick: revokeAll, disabled: list.length === 0 }, 'Revoke all sessions');
    refs.sessions.replaceChildren(list.length ? table : h('p', { class: 'muted' }, 'No open sessions.'),
      h('p', {}, all), h('p', { class: 'error', 'data-error-for': 'sessions' }));
  }

  async function revoke(s) {
    try {
      await usersd.revokeMySession(s.id);
      if (s.current) sessionEnded('You revoked the session of this browser; log in again to go on.');
      else loadSessions();
    } catch (err) {
      showError(refs.sessions, err, 'session-' + s.id);
    }
  }

  async function logoutAll() {
    if (!(await confirmAction('Log out on every device, this browser included?', 'Log out everywhere'))) return;
    try {
      await usersd.logoutAll();
      sessionEnded('You logged out everywhere.');
    } catch (err) {
      showError(refs.sessions, err, 'sessions');
    }
  }

  async function revokeAll() {
    if (!(await confirmAction(`End every session of ${user.username}? They go offline and must log in again.`, 'Revoke all sessions'))) return;
    try {
      await usersd.revokeUserSessions(id);
      loadSessions();
    } catch (err) {
      showError(refs.sessions, err, 'sessions');
    }
  }

  // ---- staff: edit, deactivate, delete
  if (!App.staff) refs.manage.remove();

  // A live update refills only the fields nobody has touched since the
  // last fill: an edit in progress survives another user's heartbeat.
  let filled = null;
  function fillEdit(u, all) {
    const f = refs.editForm.elements;
    for (const k of ['username', 'email', 'first_name', 'last_name']) if (all || !filled || f[k].value === filled[k]) f[k].value = u[k];
    if (all || !filled || f.is_staff.checked === filled.is_staff) f.is_staff.checked = u.is_staff;
    if (all) f.password.value = '';
    filled = { ...u };
    refs.toggleActive.textContent = u.is_active ? 'Deactivate' : 'Activate';
  }

  refs.editForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = refs.editForm.elements;
    clearErrors(refs.editForm);
    const body = {};
    for (const k of ['username', 'email', 'first_name', 'last_name']) if (f[k].value.trim() !== user[k]) body[k] = f[k].value.trim();
    if (f.password.value) body.password = f.password.value;
    if (f.is_staff.checked !== user.is_staff) body.is_staff = f.is_staff.checked;
    try {
      const u = await usersd.updateUser(id, body);
      showUser(u);
      fillEdit(u, true);
      refs.editDone.textContent = 'Saved.';
    } catch (err) {
      refs.editDone.textContent = '';
      showError(refs.editForm, err);
    }
  });

  refs.toggleActive.addEventListener('click', async () => {
    clearErrors(refs.manage);
    const active = !user.is_active;
    if (!active && !(await confirmAction(`Deactivate ${user.username}? They are logged out and cannot log in until activated again.`, 'Deactivate'))) return;
    try {
      showUser(await usersd.updateUser(id, { is_active: active }));
    } catch (err) {
      showError(refs.manage, err, 'is_active');
    }
  });

  refs.remove.addEventListener('click', async () => {
    clearErrors(refs.manage);
    if (!(await confirmAction(`Delete ${user.username}? Their account, sessions and presence are removed for good.`, 'Delete'))) return;
    try {
      await usersd.deleteUser(id);
      location.hash = '#/users';
    } catch (err) {
      showError(refs.manage, err, 'delete');
    }
  });

  // ---- live
  const off = Live.on((type, d) => {
    if (!user || d.user_id !== id) return;
    if (type === 'status_message') { user.status_message = d.status_message; showMessage(d.status_message); }
    else showUser(applyLive(user, type, d, again));
  });
  const again = throttle(() => readUser(id, { signal: ctl.signal }).then(showUser, () => {}), 300);
  load();
  return () => { off(); ctl.abort(); again.cancel(); };
};

// The timeline: one bar, a segment per interval coloured by status (hover
// names it), then the totals of the whole window. When history starts late
// in the window (a new user, a new server), the bar starts where it does,
// so that minutes of history are not a sliver of a month. Drawn in a
// 1000-wide viewBox stretched to the width: no redraw on resize.
function drawTimeline(box, data) {
  const to = Date.parse(data.to);
  let from = Date.parse(data.from);
  let intervals = data.intervals;
  let lead = null;
  const first = intervals[0];
  if (first && first.status === 'unknown' && intervals.length > 1 && Date.parse(first.to) - from > (to - from) / 2) {
    lead = first.to;
    from = Date.parse(first.to);
    intervals = intervals.slice(1);
  }
  const span = to - from || 1;
  const bar = svg('svg', { class: 'timeline', viewBox: '0 0 1000 40', preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Presence history', 'aria-describedby': 'history-totals' },
    intervals.map((iv) => {
      const x0 = ((Date.parse(iv.from) - from) / span) * 1000;
      const x1 = ((Date.parse(iv.to) - from) / span) * 1000;
      const secs = (Date.parse(iv.to) - Date.parse(iv.from)) / 1000;
      return svg('rect', { x: x0.toFixed(2), y: 0, width: Math.max(1, x1 - x0).toFixed(2), height: 40, class: 'st-' + iv.status },
        svg('title', {}, `${iv.status}, ${exactTime(iv.from)} – ${exactTime(iv.to)} (${duration(secs)})`));
    }));
  const total = Object.values(data.totals).reduce((a, b) => a + b, 0) || 1;
  const totals = h('ul', { class: 'totals', id: 'history-totals' },
    ['online', 'away', 'offline', 'unknown'].map((s) => h('li', {},
      h('span', { class: 'swatch st-' + s }), `${s}: ${duration(data.totals[s] || 0)} (${Math.round(((data.totals[s] || 0) / total) * 100)} %)`)));
  const axis = h('p', { class: 'axis' }, h('span', {}, exactTime(new Date(from).toISOString())), h('span', {}, exactTime(data.to)));
  const changes = data.intervals.length;
  box.replaceChildren(h('figure', { class: 'history' }, bar, axis, h('figcaption', { class: 'vh' }, 'Presence history')), totals,
    h('p', { class: 'muted' }, (changes === 1 ? 'One interval in this window.' : `${changes} intervals in this window.`) +
      (lead ? ` Nothing is known before ${exactTime(lead)}, so the bar starts there.` : '')));
}

// "Chrome 120 on Windows" from a User-Agent (the whole of it is the title).
function device(ua) {
  if (!ua) return 'unknown';
  const browser = [['Edg/', 'Edge'], ['OPR/', 'Opera'], ['Firefox/', 'Firefox'], ['HeadlessChrome/', 'Headless Chrome'],
    ['Chrome/', 'Chrome'], ['Version/', 'Safari'], ['curl/', 'curl']].find(([k]) => ua.includes(k));
  const os = [['Windows', 'Windows'], ['Android', 'Android'], ['iPhone', 'iPhone'], ['iPad', 'iPad'],
    ['Mac OS X', 'macOS'], ['CrOS', 'ChromeOS'], ['Linux', 'Linux']].find(([k]) => ua.includes(k));
  if (!browser) return ua.length > 40 ? ua.slice(0, 40) + '…' : ua;
  const version = (ua.split(browser[0])[1] || '').split(/[ .;)]/)[0];
  return `${browser[1]}${version ? ' ' + version : ''}${os ? ' on ' + os[1] : ''}`;
}
