// The JavaScript client (clients/js/usersd.js, API.md §14) in Node.js,
// against the real usersd (sanitizer build) on a fresh SQLite file on
// 127.0.0.1: every call, errors as UsersdError, keepOnline() by page
// visibility, and presence() across a restart of the server (resumed with
// Last-Event-ID), a resync (the log pruned while it was down) and a 410.
//
// Environment: USERSD_BIN (the binary). Run: node --test tests/js/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Usersd, UsersdError, Presence } from '../../clients/js/usersd.js';

const require = createRequire(import.meta.url);
const H = require('../browser/harness.js');
const { BIN, ADMIN_PASSWORD } = H;
const PASSWORD = 'password-123';
const WAIT = 20000; // ms: the longest any one thing may take

let dir, db, server, port, base, admin;
const ids = {}; // username -> id
const opened = []; // every Presence, closed in after()
const stops = []; // every keepOnline(), stopped in after()
// Decay off: statuses stay as set.
const start = (listen) => H.startServer(dir, db, listen, ['--away-after', '0', '--offline-after', '0']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns something truthy (bounded in time).
const until = (fn, what, timeout = WAIT) => H.until(fn, what, timeout);

// A client logged in as username (token mode: Node has no cookie jar).
async function client(username, password = PASSWORD, options = {}) {
  const c = new Usersd({ baseUrl: base, ...options });
  await c.login(username, password);
  return c;
}

// Rejects with a UsersdError of that status (and a sentence containing part).
async function rejects(promise, status, part) {
  const err = await promise.then(() => null, (e) => e);
  assert.ok(err instanceof UsersdError, `expected a UsersdError ${status}, got ${err}`);
  assert.equal(err.status, status, err.message);
  assert.ok(err.message.length > 5 && !err.message.startsWith('The server answered'), err.message);
  if (part) assert.match(err.message, part);
  return err;
}

// Runs SQL on the database file while the server is stopped.
function sql(statements) {
  const r = spawnSync('python3', ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()',
    db.slice('sqlite:'.length), statements], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
}

// `usersd status` on the database: a change made while the server is down.
function cliStatus(id, status) {
  const r = spawnSync(BIN, ['status', '--db', db, String(id), status], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
}

function routes() {
  const r = spawnSync(BIN, ['routes'], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).map((x) => x.method + ' ' + x.path);
}
// DND and manual status (API.md §12) are built beside this client: their
// test runs once the server has them.
const WAVE3 = routes().includes('PUT /api/users/me/dnd/');

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersd-js-'));
  db = 'sqlite:' + path.join(dir, 'usersd.db');
  ({ proc: server, port } = await start('127.0.0.1:0'));
  base = `http://127.0.0.1:${port}`;
  admin = await client('admin', ADMIN_PASSWORD);
  for (const name of ['ann', 'bob', 'cat', 'dan']) {
    const u = await admin.createUser({ username: name, password: PASSWORD, firstName: name.toUpperCase() });
    ids[name] = u.id;
  }
});

after(async () => {
  for (const p of opened) p.close();
  for (const stop of stops) stop();
  if (server) await H.stopServer(server);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// ---- calls ---------------------------------------------------------------------

test('login, me, logout: the token is kept and forgotten; a bad password is the API sentence', async () => {
  const c = new Usersd({ baseUrl: base });
  assert.equal(c.auth, 'token'); // Node: no document, no cookie jar
  const err = await rejects(c.login('ann', 'wrong-password'), 401);
  assert.equal(err.body.error, err.message);
  assert.equal(c.token, null);
  const r = await c.login('ann', PASSWORD);
  assert.equal(r.user.username, 'ann');
  assert.equal(c.token, r.token);
  const me = await c.me();
  assert.equal(me.id, ids.ann);
  assert.equal(me.online_status, 'online');
  assert.equal(await c.logout(), null);
  assert.equal(c.token, null);
  await rejects(c.me(), 401, /credentials/);
  // a token from elsewhere
  const again = await client('ann');
  const c2 = new Usersd({ baseUrl: base, token: again.token });
  assert.equal((await c2.me()).username, 'ann');
  // onUnauthorized hears a 401 of any call but login
  const heard = [];
  const c3 = new Usersd({ baseUrl: base, token: 'not-a-token', onUnauthorized: (e) => heard.push(e.status) });
  await rejects(c3.me(), 401);
  await rejects(c3.login('ann', 'wrong-password'), 401);
  assert.deepEqual(heard, [401]);
});

test("the seed's three calls", async () => {
  const ann = await client('ann');
  const r = await admin.setOnlineStatus(ids.bob, 'online');
  assert.deepEqual([r.message, r.user_id, r.online_status], ['User online status updated to online', ids.bob, 'online']);
  const s = await ann.getOnlineStatus(ids.bob);
  assert.deepEqual([s.user_id, s.username, s.online_status, s.is_online], [ids.bob, 'bob', 'online', true]);
  // ann may set her own, not bob's
  assert.equal((await ann.setOnlineStatus(ids.ann, 'away')).online_status, 'away');
  await rejects(ann.setOnlineStatus(ids.bob, 'away'), 403);
  const err = await rejects(admin.setOnlineStatus(ids.bob, 'busy'), 400, /online, away, offline/);
  assert.ok(err.fields.status, JSON.stringify(err.body));
  await rejects(admin.getOnlineStatus(987654), 404);
  assert.throws(() => admin.getOnlineStatus('1/../2'), TypeError);
  const page = await ann.getOnlineUsers({ page: 1, perPage: 1 });
  assert.equal(page.pagination.per_page, 1);
  assert.equal(page.online_users.length, 1);
  assert.ok(page.online_count >= 2); // admin and bob
  assert.equal(page.pagination.total_count, page.online_count);
  const p2 = await ann.getOnlineUsers({ page: 2, perPage: 1 });
  assert.notEqual(p2.online_users[0].id, page.online_users[0].id);
  await rejects(ann.getOnlineUsers({ page: 0 }), 400);
  assert.equal((await ann.getOnlineUsers()).pagination.per_page, 50);
});

test('more presence: bulk statuses, my status, heartbeat, the change log', async () => {
  const dan = await client('dan');
  const bulk = await dan.getOnlineStatuses([ids.cat, 987654, ids.dan]);
  assert.deepEqual(bulk.statuses.map((s) => s.username), ['cat', 'dan']);
  const head = (await dan.getChanges()).next_since;
  assert.equal((await dan.setMyStatus('away')).online_status, 'away');
  const hb = await dan.heartbeat();
  assert.deepEqual([hb.user_id, hb.online_status, hb.is_online], [ids.dan, 'online', true]);
  const ch = await dan.getChanges({ since: head, limit: 10 });
  assert.deepEqual(ch.changes.filter((c) => c.user_id === ids.dan).map((c) => c.online_status), ['away', 'online']);
  assert.ok(ch.next_since > head);
  await rejects(dan.getChanges({ limit: 0 }), 400);
  await rejects(dan.getOnlineStatuses([]), 400);
});

test('users: create, read, list, update, delete; 409 and 400 carry the fields', async () => {
  const u = await admin.createUser({ username: 'eve', password: PASSWORD, email: 'eve@example.com', firstName: 'Eve', lastName: 'Ng', isStaff: false });
  assert.deepEqual([u.username, u.first_name, u.last_name, u.is_staff, u.online_status], ['eve', 'Eve', 'Ng', false, 'offline']);
  const dup = await rejects(admin.createUser({ username: 'EVE', password: PASSWORD }), 409);
  assert.ok(dup.fields.username, JSON.stringify(dup.body));
  const bad = await rejects(admin.createUser({ username: 'x y', password: 'short' }), 400);
  assert.ok(Object.keys(bad.fields).length > 0, JSON.stringify(bad.body));
  assert.equal((await admin.getUser(u.id)).email, 'eve@example.com');
  const list = await admin.listUsers({ search: 'eve', isStaff: false, ordering: '-id', perPage: 5 });
  assert.deepEqual(list.users.map((x) => x.username), ['eve']);
  assert.equal(list.pagination.per_page, 5);
  const offline = await admin.listUsers({ onlineStatus: 'offline', perPage: 100 });
  assert.ok(offline.users.every((x) => x.online_status === 'offline'));
  await rejects(admin.listUsers({ ordering: 'password' }), 400);
  const up = await admin.updateUser(u.id, { lastName: 'Lee', isActive: false });
  assert.deepEqual([up.last_name, up.is_active], ['Lee', false]);
  await rejects(admin.updateUser(u.id, { online_status: 'online' }), 400, /online_status/);
  // not staff: 403
  const ann = await client('ann');
  await rejects(ann.getUser(u.id), 403);
  await rejects(ann.listUsers(), 403);
  assert.equal(await admin.deleteUser(u.id), null);
  await rejects(admin.getUser(u.id), 404);
  await rejects(admin.deleteUser(u.id), 404);
});

test('statistics, and history with Dates', async () => {
  const s = await admin.getStatistics();
  assert.ok(s.total_users >= 5 && s.online_users >= 1, JSON.stringify(s));
  assert.equal(s.online_users + s.away_users + s.offline_users, s.total_users);
  const to = new Date();
  const from = new Date(to.getTime() - 3600 * 1000);
  const sh = await admin.getStatisticsHistory({ from, to, bucket: '5m' });
  assert.equal(sh.bucket, '5m');
  assert.ok(sh.points.length >= 12 && sh.points.length <= 13, String(sh.points.length));
  const ph = await admin.getPresenceHistory(ids.bob, { from, to });
  assert.equal(ph.user_id, ids.bob);
  const sum = Object.values(ph.totals).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 3600) < 1, String(sum));
  assert.equal((await admin.getPresenceHistory(ids.bob)).user_id, ids.bob); // the default window
  await rejects(admin.getStatisticsHistory({ from: to, to: from }), 400);
  const ann = await client('ann');
  await rejects(ann.getStatistics(), 403);
  await rejects(ann.getPresenceHistory(ids.bob), 403);
  assert.equal((await ann.getPresenceHistory(ids.ann)).user_id, ids.ann);
});

test('sessions: list, revoke one, revoke all of a user, log out everywhere', async () => {
  const a1 = await client('cat');
  const a2 = await client('cat');
  const mine = (await a1.getMySessions()).sessions;
  assert.equal(mine.length, 2);
  assert.equal(mine.filter((s) => s.current).length, 1);
  const other = mine.find((s) => !s.current);
  assert.equal(await a1.revokeMySession(other.id), null);
  await rejects(a2.me(), 401);
  await rejects(a1.revokeMySession(other.id), 404);
  const a3 = await client('cat');
  assert.equal((await admin.getUserSessions(ids.cat)).sessions.length, 2);
  assert.equal(await admin.revokeUserSessions(ids.cat), null);
  await rejects(a1.me(), 401);
  await rejects(a3.me(), 401);
  const a4 = await client('cat');
  const a5 = await client('cat');
  assert.equal(await a4.logoutAll(), null);
  assert.equal(a4.token, null);
  await rejects(a5.me(), 401);
  assert.equal((await admin.getOnlineStatus(ids.cat)).online_status, 'offline');
});

test('status message: mine and, for staff, anyone’s', async () => {
  const ann = await client('ann');
  const expiresAt = new Date(Date.now() + 3600 * 1000);
  const m = await ann.setStatusMessage('In a meeting', { expiresAt });
  assert.equal(m.text, 'In a meeting');
  assert.equal(Date.parse(m.expires_at), expiresAt.getTime());
  assert.equal((await ann.me()).status_message.text, 'In a meeting');
  assert.equal(await ann.clearStatusMessage(), null);
  assert.equal((await ann.me()).status_message, null);
  const set = await admin.setStatusMessage('On leave', { userId: ids.ann, expiresIn: 60 });
  assert.equal(set.text, 'On leave');
  assert.equal((await admin.getUser(ids.ann)).status_message.text, 'On leave');
  await rejects(ann.setStatusMessage('x', { userId: ids.bob }), 403);
  await rejects(ann.setStatusMessage(''), 400);
  assert.equal(await admin.clearStatusMessage({ userId: ids.ann }), null);
});

test('do not disturb and manual status (API.md §12)', { skip: WAVE3 ? false : 'the server has no /api/users/me/dnd/ yet' }, async () => {
  const ann = await client('ann');
  const until = new Date(Date.now() + 3600 * 1000);
  assert.equal(Date.parse((await ann.setDnd({ until })).until), until.getTime());
  assert.ok((await ann.setDnd({ minutes: 30 })).until);
  assert.equal((await ann.setDnd()).until, null);
  assert.deepEqual((await ann.me()).dnd, { until: null });
  assert.equal(await ann.clearDnd(), null);
  assert.equal((await ann.me()).dnd, null);
  await rejects(ann.setDnd({ minutes: 0 }), 400);
  assert.ok((await admin.setDnd({ userId: ids.ann, minutes: 5 })).until);
  assert.equal(await admin.clearDnd({ userId: ids.ann }), null);
  const r = await ann.setMyStatus('away', { manual: true });
  assert.deepEqual([r.online_status, r.status_manual], ['away', true]);
  await ann.heartbeat(); // a manual status holds against activity
  assert.equal((await admin.getOnlineStatus(ids.ann)).online_status, 'away');
  const back = await admin.setOnlineStatus(ids.ann, 'online');
  assert.equal(back.status_manual, false);
});

test('errors: an unreachable server is status 0, an aborted call an AbortError', async () => {
  const srv = http.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const closedPort = srv.address().port;
  await new Promise((r) => srv.close(r));
  const gone = new Usersd({ baseUrl: `http://127.0.0.1:${closedPort}`, token: 'x' });
  const err = await gone.me().then(() => null, (e) => e);
  assert.ok(err instanceof UsersdError);
  assert.equal(err.status, 0);
  assert.match(err.message, /cannot be reached/);
  const ctl = new AbortController();
  ctl.abort();
  await assert.rejects(admin.me({ signal: ctl.signal }), { name: 'AbortError' });
  // aborted while the reply is read: an AbortError, never an empty reply
  const ctl2 = new AbortController();
  const slow = new Usersd({ baseUrl: base, token: admin.token, fetch: async (...a) => {
    const resp = await fetch(...a);
    ctl2.abort();
    return resp;
  } });
  await assert.rejects(slow.me({ signal: ctl2.signal }), { name: 'AbortError' });
  // an error of the API that is not JSON (here: none) still has a sentence
  assert.ok(new UsersdError(500, 'x') instanceof Error);
});

test('usersd.d.ts declares exactly the methods the module has', () => {
  const dts = fs.readFileSync(new URL('../../clients/js/usersd.d.ts', import.meta.url), 'utf8');
  for (const cls of [Usersd, Presence]) {
    const body = dts.slice(dts.indexOf(`export class ${cls.name} {`)).split('\n}\n')[0];
    const declared = [...body.matchAll(/^ {2}(\w+)\(/gm)].map((m) => m[1]).filter((n) => n !== 'constructor').sort();
    const actual = Object.getOwnPropertyNames(cls.prototype).filter((n) => n !== 'constructor' && !n.startsWith('_')).sort();
    assert.deepEqual(declared, actual, cls.name);
    assert.ok(actual.length >= (cls === Usersd ? 30 : 4), String(actual.length));
  }
});

// ---- keepOnline -------------------------------------------------------------------

test('keepOnline heartbeats while the page is visible, none while hidden', async () => {
  const doc = new EventTarget();
  doc.visibilityState = 'visible';
  let beats = 0;
  const bob = await client('bob', PASSWORD, {
    fetch: (url, init) => { if (String(url).includes('/heartbeat/')) beats++; return fetch(url, init); },
  });
  const status = async () => (await admin.getOnlineStatus(ids.bob)).online_status;
  await admin.setOnlineStatus(ids.bob, 'away');
  const stop = bob.keepOnline({ interval: 300, document: doc });
  stops.push(stop);
  await until(async () => (await status()) === 'online', 'a heartbeat to bring bob online');
  await until(() => beats >= 3, 'heartbeats every 300 ms');
  // hidden: no heartbeat, so a status set from outside stays
  doc.visibilityState = 'hidden';
  doc.dispatchEvent(new Event('visibilitychange'));
  await admin.setOnlineStatus(ids.bob, 'away');
  const hiddenAt = beats;
  await sleep(1000);
  assert.equal(beats, hiddenAt, 'a heartbeat while hidden');
  assert.equal(await status(), 'away');
  // visible again: one at once
  doc.visibilityState = 'visible';
  doc.dispatchEvent(new Event('visibilitychange'));
  await until(async () => (await status()) === 'online', 'a heartbeat when visible again', 2000);
  stop();
  const stoppedAt = beats;
  await sleep(800);
  assert.equal(beats, stoppedAt, 'a heartbeat after stop()');
  doc.dispatchEvent(new Event('visibilitychange')); // no longer listened to
  await sleep(100);
  assert.equal(beats, stoppedAt);
  // a 401 (the session ended elsewhere) stops it by itself
  await admin.revokeUserSessions(ids.bob);
  const errors = [];
  bob.keepOnline({ interval: 200, document: doc, onError: (e) => errors.push(e.status) });
  await until(() => errors.length === 1, 'the 401');
  const at401 = beats;
  await sleep(700);
  assert.deepEqual([errors, beats], [[401], at401]);
});

// ---- presence ------------------------------------------------------------------------

// Records what a Presence reports (and closes it after the tests, even
// when one fails before its own close()).
function watch(p) {
  opened.push(p);
  const seen = { changes: [], states: [] };
  p.onChange((c) => seen.changes.push(c));
  p.onState((s) => seen.states.push(s));
  return seen;
}
const statusOf = (p, id) => p.users.get(id) && p.users.get(id).online_status;

test('presence({ids}): the snapshot, then events; onChange; close', async () => {
  const ann = await client('ann');
  await admin.setOnlineStatus(ids.bob, 'away');
  const p = ann.presence({ ids: [ids.bob, ids.dan, 987654] });
  assert.ok(p instanceof Presence);
  const seen = watch(p);
  await p.ready;
  assert.equal(p.state, 'live');
  assert.deepEqual([...p.users.keys()], [ids.bob, ids.dan]); // unknown ids left out
  assert.equal(statusOf(p, ids.bob), 'away');
  assert.equal(seen.changes[0].type, 'snapshot');
  await admin.setOnlineStatus(ids.bob, 'online');
  await admin.setOnlineStatus(ids.cat, 'online'); // not followed
  await until(() => statusOf(p, ids.bob) === 'online', 'bob online in the map');
  const c = seen.changes.at(-1);
  assert.deepEqual([c.type, c.userId, c.user.online_status, c.previous.online_status], ['presence', ids.bob, 'online', 'away']);
  assert.equal(p.get(ids.bob).username, 'bob');
  assert.ok(Number(p.lastEventId) > 0);
  // status messages land in the same map
  const danBefore = statusOf(p, ids.dan);
  await admin.setStatusMessage('Lunch', { userId: ids.dan });
  await until(() => p.get(ids.dan).status_message && p.get(ids.dan).status_message.text === 'Lunch', 'the message');
  assert.equal(statusOf(p, ids.dan), danBefore); // merged, not replaced
  assert.ok(!p.users.has(ids.cat));
  p.close();
  assert.equal(p.state, 'closed');
  const n = seen.changes.length;
  await admin.setOnlineStatus(ids.bob, 'away');
  await sleep(500);
  assert.equal(seen.changes.length, n, 'a change after close()');
  assert.throws(() => ann.presence({ ids: [] }), TypeError);
});

test('presence() without ids: every change, the maxUsers most recent kept', async () => {
  const ann = await client('ann');
  for (const name of ['bob', 'cat', 'dan']) await admin.setOnlineStatus(ids[name], 'offline');
  const p = ann.presence({ maxUsers: 2 });
  watch(p);
  await p.ready;
  for (const [name, status] of [['bob', 'online'], ['cat', 'online'], ['bob', 'away'], ['dan', 'away']]) {
    await admin.setOnlineStatus(ids[name], status);
    await until(() => statusOf(p, ids[name]) === status, `${name} ${status}`);
  }
  assert.deepEqual([...p.users.keys()], [ids.bob, ids.dan]); // cat changed least recently
  p.close();
});

test('presence: a refusal is final and says why (400, 401)', async () => {
  const ann = await client('ann');
  const many = Array.from({ length: 1001 }, (_, i) => i + 1);
  const p = ann.presence({ ids: many });
  watch(p);
  await assert.rejects(p.ready, (e) => e instanceof UsersdError && e.status === 400);
  assert.equal(p.state, 'closed');
  assert.equal(p.error.status, 400);
  assert.ok(p.error.fields.ids, JSON.stringify(p.error.body));
  const heard = [];
  const stale = new Usersd({ baseUrl: base, token: 'revoked', onUnauthorized: (e) => heard.push(e.status) });
  const q = stale.presence();
  watch(q);
  await until(() => q.state === 'closed', 'the 401 stream to close');
  assert.equal(q.error.status, 401);
  assert.deepEqual(heard, [401]);
});

test('presence across a dropped connection (the server restarted) resumes with Last-Event-ID, then a resync reloads', async () => {
  const ann = await client('ann');
  await admin.setOnlineStatus(ids.bob, 'online');
  await admin.setOnlineStatus(ids.dan, 'online');
  const p = ann.presence({ ids: [ids.bob, ids.dan] });
  const all = ann.presence(); // every user, no snapshot
  const seen = watch(p);
  const seenAll = watch(all);
  await p.ready;
  await all.ready;
  await admin.setOnlineStatus(ids.dan, 'away');
  await until(() => statusOf(p, ids.dan) === 'away' && statusOf(all, ids.dan) === 'away', 'dan away in both maps');
  const before = Number(p.lastEventId);

  // 1. The server stops; changes happen while it is down; it comes back.
  assert.equal(await H.stopServer(server), 0);
  await until(() => p.state === 'reconnecting' && all.state === 'reconnecting', 'reconnecting');
  cliStatus(ids.bob, 'away');
  cliStatus(ids.dan, 'offline');
  ({ proc: server } = await start(`127.0.0.1:${port}`));
  await until(() => statusOf(p, ids.bob) === 'away' && statusOf(p, ids.dan) === 'offline', 'the missed changes, replayed');
  await until(() => statusOf(all, ids.bob) === 'away' && statusOf(all, ids.dan) === 'offline', 'the missed changes, replayed (all)');
  assert.equal(p.state, 'live');
  assert.ok(Number(p.lastEventId) > before);
  // replayed as events, one per change, not as a reload
  assert.ok(!seen.changes.some((c) => c.type === 'resync'));
  assert.deepEqual(seen.changes.filter((c) => c.type === 'presence').map((c) => c.user.online_status), ['away', 'away', 'offline']);
  assert.ok(seen.states.includes('reconnecting') && seen.states.at(-1) === 'live', seen.states.join());
  // and live again
  await admin.setOnlineStatus(ids.bob, 'online');
  await until(() => statusOf(p, ids.bob) === 'online' && statusOf(all, ids.bob) === 'online', 'live events after the restart');

  // 2. Down again, and the log of what was missed is pruned: a resync.
  assert.equal(await H.stopServer(server), 0);
  await until(() => p.state === 'reconnecting' && all.state === 'reconnecting', 'reconnecting');
  cliStatus(ids.bob, 'offline');
  cliStatus(ids.dan, 'online');
  sql('UPDATE presence_meta SET pruned_through = (SELECT max(seq) FROM presence_changes); DELETE FROM presence_changes;');
  const n = seen.changes.length;
  const nAll = seenAll.changes.length;
  ({ proc: server } = await start(`127.0.0.1:${port}`));
  await until(() => statusOf(p, ids.bob) === 'offline' && statusOf(p, ids.dan) === 'online', 'the state reloaded');
  await until(() => statusOf(all, ids.bob) === 'offline' && statusOf(all, ids.dan) === 'online', 'the state reloaded (all)');
  // the resumed stream's snapshot first (API.md §7), then the resync's reload
  assert.deepEqual(seen.changes.slice(n).map((c) => c.type), ['snapshot', 'resync']);
  assert.ok(seenAll.changes.slice(nAll).some((c) => c.type === 'resync'));
  assert.deepEqual([...p.users.keys()], [ids.bob, ids.dan]);
  // and live again
  await admin.setOnlineStatus(ids.dan, 'away');
  await until(() => statusOf(p, ids.dan) === 'away' && statusOf(all, ids.dan) === 'away', 'live events after the resync');
  p.close();
  all.close();
});

// A proxy in front of usersd that answers 410 to the first stream request
// resuming with Last-Event-ID, and can cut the open streams.
async function goneProxy() {
  const streams = new Set();
  let gone = 0;
  const proxy = http.createServer((req, res) => {
    if (req.url.startsWith('/api/users/presence/stream/') && req.headers['last-event-id'] && gone === 0) {
      gone++;
      res.writeHead(410, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: 'the events after that id are gone; reload the state' }));
      return;
    }
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    if (req.url.startsWith('/api/users/presence/stream/')) streams.add({ req, res, up });
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${proxy.address().port}`,
    gone: () => gone,
    cut() { for (const s of streams) { s.up.destroy(); s.res.destroy(); } streams.clear(); },
    close: () => new Promise((r) => { proxy.closeAllConnections(); proxy.close(r); }),
  };
}

test('presence: a 410 on resuming reloads the state', async () => {
  const proxy = await goneProxy();
  try {
    const ann = new Usersd({ baseUrl: proxy.url, token: (await client('ann')).token });
    await admin.setOnlineStatus(ids.cat, 'online');
    const p = ann.presence({ ids: [ids.cat] });
    const seen = watch(p);
    await p.ready;
    await admin.setOnlineStatus(ids.cat, 'away');
    await until(() => statusOf(p, ids.cat) === 'away', 'cat away');
    proxy.cut();
    await until(() => p.state === 'reconnecting', 'reconnecting');
    await admin.setOnlineStatus(ids.cat, 'offline'); // missed while cut off
    await until(() => proxy.gone() === 1, 'the resume answered 410');
    await until(() => statusOf(p, ids.cat) === 'offline', 'the state reloaded after the 410');
    assert.equal(seen.changes.at(-1).type, 'resync');
    assert.equal(p.state, 'live');
    await admin.setOnlineStatus(ids.cat, 'online');
    await until(() => statusOf(p, ids.cat) === 'online', 'live after the 410');
    p.close();
  } finally {
    await proxy.close();
  }
});
