'use strict';
// Makes the README's screenshots (docs/dashboard-*.png): a fresh database
// with a few people and a few thousand seeded users, then each view at
// 1280×800. SHOT_MINUTES=N first lets N minutes of changes happen (a random
// walk of who is online), so the chart has more than a point or two.
// Not a test; run it after a change to how the dashboard looks:
//   tests/browser/run.sh build-test/browser build-test/usersd   (once, for npm ci)
//   BROWSER_WORK=build-test/browser USERSD_BIN=build/usersd node tests/browser/docs-screenshots.js
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const H = require('./harness');

const PEOPLE = [
  ['ann.lee', 'Ann', 'Lee', 'online', 'Reviewing the release notes'],
  ['bruno', 'Bruno', 'Costa', 'online', null],
  ['chen.wei', 'Chen', 'Wei', 'away', 'Lunch, back at 2'],
  ['dana', 'Dana', 'Okafor', 'online', 'On call this week'],
  ['emeka', 'Emeka', 'Eze', 'online', null],
  ['farah', 'Farah', 'Haddad', 'offline', null],
  ['gustav', 'Gustav', 'Berg', 'online', 'In a meeting'],
  ['hana', 'Hana', 'Sato', 'away', null],
];

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersd-shots-'));
  const db = 'sqlite:' + path.join(dir, 'usersd.db');
  const seed = spawnSync(H.BIN, ['seed', '--db', db, '--users', '5000'], { encoding: 'utf8', timeout: 120000 });
  if (seed.status !== 0) throw new Error(seed.stderr);
  const pw = 'demo-password-1';
  spawnSync(H.BIN, ['createuser', '--db', db, '--username', 'admin', '--staff', '--password-stdin'], { input: H.ADMIN_PASSWORD + '\n' });
  const { proc, port } = await H.startServer(dir, db, '127.0.0.1:0', ['--away-after', '0', '--offline-after', '0']);
  const B = `http://127.0.0.1:${port}`;
  const api = (...a) => H.call(B, ...a);
  const browser = await H.launchBrowser();
  try {
    const admin = (await api('POST', '/api/auth/login/', { username: 'admin', password: H.ADMIN_PASSWORD })).body.token;
    let first = null;
    const named = [];
    const ids = {};
    for (const [username, first_name, last_name, status, message] of PEOPLE) {
      const u = (await api('POST', '/api/users/management/users/', { username, first_name, last_name, password: pw, email: username + '@example.com' }, admin)).body;
      first = first || u;
      ids[username] = u.id;
      if (status === 'online') named.push(u.id);
      const tok = (await api('POST', '/api/auth/login/', { username, password: pw }, undefined, 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Version/17.0 Safari/605.1.15')).body.token;
      if (message) await api('PUT', '/api/users/me/status-message/', { text: message, expires_in: 7200 }, tok);
      if (status !== 'online') await api('POST', `/api/users/admin/users/${u.id}/set-online-status/`, { status }, admin);
    }
    const minutes = Number(process.env.SHOT_MINUTES || 0);
    const end = Date.now() + minutes * 60000;
    let online = [];
    while (Date.now() < end) {
      // a few seeded users come online, a few leave: the count drifts
      const up = Math.random() < 0.55;
      for (let k = 0; k < 15; k++) {
        if (up || !online.length) {
          const id = 2 + Math.floor(Math.random() * 4990);
          online.push(id);
          await api('POST', `/api/users/admin/users/${id}/set-online-status/`, { status: 'online' }, admin);
        } else {
          const id = online.splice(Math.floor(Math.random() * online.length), 1)[0];
          await api('POST', `/api/users/admin/users/${id}/set-online-status/`, { status: 'offline' }, admin);
        }
      }
      await new Promise((r) => setTimeout(r, 3000));
    }
    // the people come first in the online list (the newest last_seen)
    for (const id of named.reverse()) await api('POST', `/api/users/admin/users/${id}/set-online-status/`, { status: 'online' }, admin);
    // some history for the first person's timeline
    for (const status of ['away', 'online', 'away', 'online']) {
      await new Promise((r) => setTimeout(r, 1500));
      await api('POST', `/api/users/admin/users/${first.id}/set-online-status/`, { status }, admin);
    }
    // API.md §12: a manual away (staff see "manual") and do not disturb
    await api('POST', `/api/users/admin/users/${ids.hana}/set-online-status/`, { status: 'away', manual: true }, admin);
    await api('PUT', `/api/users/management/users/${ids.gustav}/dnd/`, { minutes: 45 }, admin);
    await api('PUT', `/api/users/management/users/${ids.dana}/dnd/`, {}, admin);
    await api('PUT', `/api/users/management/users/${first.id}/dnd/`, { minutes: 90 }, admin);
    await api('POST', `/api/users/admin/users/${first.id}/set-online-status/`, { status: 'away', manual: true }, admin);
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.goto(B + '/');
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(H.ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
    const views = [['online', '#/online'], ['users', '#/users?ordering=-date_joined'],
      ['user', `#/users/${first.id}`], ['stats', '#/stats?range=1h']];
    for (const [name, hash] of views) {
      await page.goto(B + '/' + hash);
      await page.waitForTimeout(1200);
      const out = path.join(H.ROOT, 'docs', `dashboard-${name}.png`);
      await page.screenshot({ path: out });
      console.log('wrote', path.relative(process.cwd(), out));
    }
  } finally {
    await browser.close();
    await H.stopServer(proc);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
