// types.ts — compiled (never run) by tests/js/check-types.sh: a program
// using every call of the client through usersd.d.ts, in strict mode, so
// that the declarations an editor completes from are the ones the module
// has (tests/js/client.test.mjs checks that the names match).
import { Usersd, UsersdError, Presence, PresenceChange, Status, User } from '../../clients/js/usersd.js';

async function everyCall(): Promise<void> {
  const api = new Usersd({ baseUrl: 'http://127.0.0.1:8000', auth: 'token', onUnauthorized: (e) => { e.handled = true; } });
  const signal = new AbortController().signal;
  const { token, user } = await api.login('ann', 'password-123', { signal });
  const me: User = await api.me();
  const status: Status = (await api.setOnlineStatus(user.id, 'away', { manual: true })).online_status;
  const online: boolean = (await api.getOnlineStatus(me.id)).is_online;
  const page = await api.getOnlineUsers({ page: 1, perPage: 50 });
  const n: number = page.online_count + page.pagination.total_pages;
  const ids: number[] = (await api.getOnlineStatuses([1, 2])).statuses.map((s) => s.user_id);
  await api.setMyStatus('online');
  await api.heartbeat();
  const next: number = (await api.getChanges({ since: 0, limit: 10 })).next_since;
  const list = await api.listUsers({ onlineStatus: 'online', isActive: true, isStaff: false, search: 'a', ordering: '-id', page: 1, perPage: 5 });
  const made = await api.createUser({ username: 'bob', password: 'password-123', firstName: 'Bob', isStaff: false });
  await api.getUser(made.id);
  await api.updateUser(made.id, { lastName: 'Lee', is_active: false });
  await api.deleteUser(made.id);
  const ratio: number = (await api.getStatistics()).online_ratio;
  const points = (await api.getStatisticsHistory({ from: new Date(), to: '2030-01-01T00:00:00Z', bucket: '1h' })).points;
  const totals = (await api.getPresenceHistory(me.id, { from: new Date() })).totals;
  const sessions = (await api.getMySessions()).sessions.filter((s) => !s.current);
  await api.revokeMySession(sessions[0].id);
  await api.getUserSessions(me.id);
  await api.revokeUserSessions(me.id);
  const text: string = (await api.setStatusMessage('Lunch', { expiresIn: 60, userId: me.id })).text;
  await api.clearStatusMessage({ userId: me.id });
  const until: string | null = (await api.setDnd({ minutes: 30 })).until;
  await api.clearDnd();
  const raw: unknown = await api.request('GET', '/healthz');
  await api.logout();
  await api.logoutAll();
  const p: Presence = api.presence({ ids: [1, 2, 3] });
  const off = p.onChange((c: PresenceChange) => {
    if (c.userId !== null && c.user) console.log(c.type, c.user.username, c.user.online_status, c.user.dnd?.until);
  });
  p.onState((s) => console.log(s));
  await p.ready;
  for (const [id, entry] of p.users) console.log(id, entry.last_seen, entry.status_message?.text);
  off();
  p.close();
  const stop: () => void = api.keepOnline({ interval: 30000, onError: (e) => console.log(e.message) });
  stop();
  try {
    await api.me();
  } catch (e) {
    if (e instanceof UsersdError) console.log(e.status, e.message, e.fields.username);
  }
  console.log(token, status, online, n, ids, next, list.users.length, ratio, points, totals, text, until, raw);
}
everyCall();
