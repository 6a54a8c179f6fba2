'use strict';
// users.js — "Users" (staff): the management list, searched, filtered,
// ordered and paged by the server (a million users never come to the
// page), and the form that creates a user. The filters live in the URL
// hash, so reload and Back keep them.

Views.users = function (main, params) {
  const { root, refs } = clone('t-users');
  main.replaceChildren(root);
  const form = refs.filters;
  const names = ['search', 'online_status', 'is_active', 'is_staff', 'ordering', 'per_page'];
  for (const n of names) if (params.has(n)) form.elements[n].value = params.get(n);
  let page = Math.max(1, parseInt(params.get('page'), 10) || 1);
  let ctl = null;
  const rows = new Map(); // user id -> {u, td}: the users on the page, kept live

  function state() {
    const s = {};
    for (const n of names) s[n] = form.elements[n].value.trim();
    if (s.per_page === '50') s.per_page = '';
    if (s.ordering === 'id') s.ordering = '';
    return s;
  }

  function row(u) {
    const flags = [u.is_staff ? h('span', { class: 'tag' }, 'staff') : null,
      u.is_active ? null : h('span', { class: 'tag off' }, 'inactive')];
    const name = [u.first_name, u.last_name].filter(Boolean).join(' ');
    return h('tr', { 'data-user-id': u.id },
      h('td', { class: 'opt num' }, u.id),
      h('th', { scope: 'row' }, h('a', { href: '#/users/' + u.id }, u.username), flags),
      h('td', { class: 'opt' }, name),
      h('td', { class: 'opt' }, u.email),
      rows.set(u.id, { u, td: h('td', {}, badge(u)) }).get(u.id).td,
      h('td', { class: 'opt' }, timeEl(u.last_seen)));
  }

  let typing = 0;
  async function load() {
    clearTimeout(typing); // this load reads the search box as it is now
    const s = state();
    history.replaceState(null, '', '#/users' + query({ ...s, page: page > 1 ? page : '' }));
    if (ctl) ctl.abort();
    ctl = new AbortController();
    clearErrors(form);
    refs.status.textContent = 'Loading…';
    try {
      const data = await usersd.listUsers({ ...s, page, signal: ctl.signal });
      rows.clear();
      refs.body.replaceChildren(...data.users.map(row));
      const p = data.pagination;
      refs.status.textContent = p.total_count === 1 ? '1 user' : `${fmtNumber(p.total_count)} users`;
      refs.empty.hidden = data.users.length > 0;
      pager(refs.pager, p, (n) => { page = n; load(); });
    } catch (e) {
      if (e.name === 'AbortError') return;
      refs.status.textContent = '';
      showError(form, e, 'search');
    }
  }

  refs.search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { page = 1; load(); }, 250);
  });
  form.addEventListener('change', (e) => {
    if (e.target === refs.search) return;
    page = 1;
    load();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    page = 1;
    load();
  });

  // Create a user.
  const create = refs.create;
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(create);
    refs.created.replaceChildren();
    const f = create.elements;
    const body = { username: f.username.value.trim(), password: f.password.value, is_staff: f.is_staff.checked };
    for (const k of ['email', 'first_name', 'last_name']) if (f[k].value.trim()) body[k] = f[k].value.trim();
    try {
      const u = await usersd.createUser(body);
      create.reset();
      refs.created.replaceChildren('Created ', h('a', { href: '#/users/' + u.id }, u.username), '.');
      load();
    } catch (err) {
      showError(create, err);
    }
  });

  const off = Live.on(function change(type, d) {
    const r = rows.get(d.user_id);
    if (!r) return;
    r.u = applyLive(r.u, type, d, () => usersd.getUser(d.user_id).then((u) => change('user', { ...u, user_id: u.id }), () => {}));
    r.td.replaceChildren(badge(r.u));
  });
  load();
  return () => { off(); clearTimeout(typing); if (ctl) ctl.abort(); };
};
