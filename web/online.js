'use strict';
// online.js — "Online now": one page of the online list, kept live from the
// presence stream. Events touch only the rows they name; a change for a
// user not on the page moves the count, never the whole list.

Views.online = function (main, params) {
  const { root, refs } = clone('t-online');
  main.replaceChildren(root);
  const perPage = 50;
  let page = Math.max(1, parseInt(params.get('page'), 10) || 1);
  let count = 0;
  let totalUsers = null; // staff: for the ratio
  const rows = new Map(); // user id -> row state, for the users on the page
  const known = new Map(); // user id -> last status seen, to count exactly
  const messages = new Map(); // user id -> status message from events
  let ctl = null;

  if (!App.staff) refs.emailHead.remove();

  function showCount() {
    refs.count.textContent = fmtNumber(count);
    refs.ratio.textContent = totalUsers
      ? ` — ${(Math.round((count / totalUsers) * 10000) / 100).toFixed(2)} % of ${fmtNumber(totalUsers)} users`
      : '';
    const pages = Math.max(1, Math.ceil(count / perPage));
    pager(refs.pager, { page, total_pages: pages, has_previous: page > 1, has_next: page < pages }, go);
  }

  function messageCell(m) {
    if (!m) return h('span', { class: 'muted' }, '—');
    return h('span', {}, m.text, m.expires_at ? h('span', { class: 'muted' }, ` (until ${exactTime(m.expires_at)})`) : '');
  }

  function makeRow(u) {
    const mine = App.me && u.id === App.me.id;
    const name = App.staff || mine ? h('a', { href: '#/users/' + u.id }, u.username) : u.username;
    const r = {
      u,
      status: h('td', {}, badge(u)),
      seen: h('td', {}, timeEl(u.last_seen)),
      message: h('td', { class: 'opt' }, messageCell(u.status_message)),
    };
    r.tr = h('tr', { 'data-user-id': u.id },
      h('th', { scope: 'row' }, name, mine ? h('span', { class: 'muted' }, ' (you)') : ''),
      r.status, r.seen, r.message,
      App.staff ? h('td', { class: 'opt' }, u.email || '') : null);
    return r;
  }

  function render(users) {
    rows.clear();
    refs.body.replaceChildren();
    for (const u of users) {
      const r = makeRow(u);
      rows.set(u.id, r);
      known.set(u.id, u.online_status);
      refs.body.append(r.tr);
    }
    refs.empty.hidden = users.length > 0;
  }

  async function load() {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    const signal = ctl.signal;
    try {
      const [list, stats] = await Promise.all([
        usersd.getOnlineUsers({ page, perPage, signal }),
        App.staff ? usersd.getStatistics({ signal }) : null,
      ]);
      count = list.online_count;
      if (stats) totalUsers = stats.total_users;
      render(list.online_users);
      showCount();
      refs.error.textContent = '';
    } catch (e) {
      if (!e.handled && e.name !== 'AbortError') refs.error.textContent = e.message;
    }
  }

  // The online count from the server, when an event cannot tell it (a user
  // we have not seen left away or offline: was it online before?).
  const refreshCount = throttle(async () => {
    try {
      const list = await usersd.getOnlineUsers({ perPage: 1 });
      count = list.online_count;
      showCount();
    } catch (e) { /* the next event or load tries again */ }
  }, 1000);

  function go(p) {
    page = p;
    history.replaceState(null, '', '#/online' + (p > 1 ? '?page=' + p : ''));
    load();
  }

  function onPresence(d) {
    const before = known.get(d.user_id);
    if (known.size > 100000) known.clear(); // bounded: unknowns ask the server
    known.set(d.user_id, d.online_status);
    // Events come only on a change, so "online" was not online before.
    if (d.online_status === 'online') { if (before !== 'online') count++; }
    else if (before === 'online') count--;
    else if (before === undefined) refreshCount();
    const r = rows.get(d.user_id);
    if (r) {
      change(r, 'presence', d);
      r.seen.replaceChildren(timeEl(d.last_seen));
      r.tr.classList.toggle('gone', d.online_status !== 'online');
    } else if (d.online_status === 'online' && page === 1) {
      // The newest last_seen comes first: a user who just came online
      // belongs at the top of page 1; the page keeps its length.
      const nr = makeRow({ id: d.user_id, username: d.username, online_status: d.online_status,
        last_seen: d.last_seen, dnd: d.dnd, status_message: messages.get(d.user_id), ...(App.staff && { status_manual: false }) });
      rows.set(d.user_id, nr);
      refs.body.prepend(nr.tr);
      refs.empty.hidden = true;
      while (rows.size > perPage) {
        const last = refs.body.lastElementChild;
        rows.delete(Number(last.dataset.userId));
        last.remove();
      }
    }
    showCount();
  }

  // A row's status after a change (dnd, user, presence).
  function change(r, type, d) {
    r.u = applyLive(r.u, type, d, () => readUser(d.user_id).then((u) => change(r, 'user', u), () => {}));
    r.status.replaceChildren(badge(r.u));
  }

  const off = Live.on((type, d) => {
    if (type === 'presence') onPresence(d);
    else if (type === 'status_message') {
      if (messages.size > 10000) messages.clear(); // bounded: only for rows inserted later
      messages.set(d.user_id, d.status_message);
      const r = rows.get(d.user_id);
      if (r) r.message.replaceChildren(messageCell(d.status_message));
    } else if (type === 'resync') load();
    else if (rows.has(d.user_id)) change(rows.get(d.user_id), type, d);
  });
  // Counting from events can drift (an event racing a load): reconcile.
  const reconcile = setInterval(refreshCount, 30000);
  load();
  return () => { off(); clearInterval(reconcile); refreshCount.cancel(); if (ctl) ctl.abort(); };
};
