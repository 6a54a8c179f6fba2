// usersd.js — the JavaScript client of usersd (API.md §14), served by the
// server itself at /client/usersd.js. An ES module with no dependencies; it
// runs in browsers and in Node.js 20+ alike (fetch is global in both; the
// presence stream is read with fetch and parsed here, one parser for both).
//
//   import { Usersd } from '/client/usersd.js';
//   const api = new Usersd();                 // a page: same origin, the session cookie
//   await api.login('ann', 'secret-pass');
//   const p = api.presence({ ids: [2, 7, 42] });
//   p.onChange(() => render(p.users));         // a Map: user id -> presence
//
// Replies are the API's own JSON objects (snake_case keys, as in API.md).
// Every method takes, as its last argument, an options object that may
// hold `signal` (an AbortSignal); an aborted call rejects with the
// AbortError of fetch.

const JSON_TYPE = 'application/json';
const KEEPALIVE_TIMEOUT = 45000; // ms: three missed `: keepalive` comments (15 s each)
const RETRY_MAX = 30000; // ms: the longest wait between two reconnects
const BULK_MAX = 100; // ids per bulk-status request (API.md §6)

/**
 * A failed call: the HTTP status (0 when the server could not be reached)
 * and the API's sentence as `message`; `fields` names the inputs at fault
 * (`{"username": "why"}`), `body` is the whole JSON reply.
 */
export class UsersdError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {Object<string,string>} [fields]
   * @param {any} [body]
   */
  constructor(status, message, fields = {}, body = null) {
    super(message);
    this.name = 'UsersdError';
    /** @type {number} */
    this.status = status;
    /** @type {Object<string,string>} */
    this.fields = fields || {};
    /** @type {any} */
    this.body = body;
  }
}

// `firstName` -> `first_name`; API names pass unchanged.
function snake(key) {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

// The API's time format (RFC 3339, microseconds, Z) from a Date; strings
// pass unchanged.
function apiTime(v) {
  return v instanceof Date ? v.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') : v;
}

// An object for the API: keys in snake_case, Dates as API times, undefined
// left out; `signal` and the names in `skip` are the client's, not the API's.
function apiFields(obj, skip = []) {
  const out = {};
  for (const [k, v] of Object.entries(obj || {})) {
    if (v === undefined || k === 'signal' || skip.includes(k)) continue;
    out[snake(k)] = apiTime(v);
  }
  return out;
}

function queryString(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(apiFields(params))) {
    if (v !== '' && v !== null) q.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

function idPath(id) {
  if (!Number.isSafeInteger(id) || id < 0) throw new TypeError('a user or session id must be a whole number, not ' + String(id));
  return String(id);
}

function hasDocument() {
  return typeof document !== 'undefined' && typeof document.addEventListener === 'function';
}

/**
 * The client. One per server (and, in Node, per logged-in user).
 */
export class Usersd {
  /**
   * @param {Object} [options]
   * @param {string} [options.baseUrl] the server, e.g. `http://127.0.0.1:8000`; default: the page's own origin
   * @param {string} [options.token] a token from a login elsewhere: sent as `Authorization: Token …`
   * @param {'cookie'|'token'} [options.auth] how to authenticate: the browser's session cookie
   *   (the default in a page) or the token that `login()` returns, kept by this client (the default
   *   in Node, which has no cookie jar)
   * @param {(err: UsersdError) => void} [options.onUnauthorized] called on a 401 of any call but
   *   `login()` (the session ended: log in again); set `err.handled = true` to tell your callers
   * @param {typeof fetch} [options.fetch] the fetch to use (default: the global one)
   */
  constructor(options = {}) {
    this.baseUrl = (options.baseUrl || '').replace(/\/+$/, '');
    /** @type {string|null} */
    this.token = options.token || null;
    this.auth = options.auth || (this.token || !hasDocument() ? 'token' : 'cookie');
    this.onUnauthorized = options.onUnauthorized || null;
    this._fetch = options.fetch || ((...a) => globalThis.fetch(...a));
  }

  /**
   * The fetch options of every request: headers, credentials (internal;
   * Presence uses it too).
   * @param {string} method
   * @param {Object<string,string>} headers
   * @param {AbortSignal} [signal]
   * @returns {RequestInit}
   */
  _init(method, headers, signal) {
    /** @type {Object<string,string>} */
    const h = { Accept: JSON_TYPE, ...headers };
    if (this.auth === 'token' && this.token) h.Authorization = 'Token ' + this.token;
    return { method, headers: h, signal, credentials: this.baseUrl ? 'include' : 'same-origin', cache: 'no-store' };
  }

  /**
   * One API call: resolves with the parsed reply (null for 204), rejects
   * with a UsersdError carrying the API's sentence. The other methods are
   * made of this one; use it for an endpoint they do not cover.
   * @param {string} method
   * @param {string} path e.g. `/api/users/me/`
   * @param {any} [body] sent as JSON
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<any>}
   */
  async request(method, path, body, opts = {}) {
    const init = this._init(method, body === undefined ? {} : { 'Content-Type': JSON_TYPE }, opts.signal);
    if (body !== undefined) init.body = JSON.stringify(body);
    let resp;
    try {
      resp = await this._fetch(this.baseUrl + path, init);
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new UsersdError(0, 'The server cannot be reached; check that usersd is running, then try again.');
    }
    let data = null;
    if (resp.status !== 204 && resp.status !== 304) {
      try {
        data = await resp.json();
      } catch (e) {
        if (e && e.name === 'AbortError') throw e; // aborted while reading: not an empty reply
        data = null;
      }
    }
    if (resp.ok) return data;
    const err = new UsersdError(resp.status, (data && data.error) || `The server answered ${resp.status}.`,
      data && data.fields, data);
    if (resp.status === 401 && !path.startsWith('/api/auth/login') && this.onUnauthorized) this.onUnauthorized(err);
    throw err;
  }

  // ---- sessions of this client --------------------------------------------

  /**
   * Logs in: the user goes online. In a page the server sets the session
   * cookie; in token mode this client keeps the token for its next calls.
   * @param {string} username
   * @param {string} password
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<{token: string, user: User}>}
   */
  async login(username, password, opts = {}) {
    const data = await this.request('POST', '/api/auth/login/', { username, password }, opts);
    if (this.auth === 'token') this.token = data.token;
    return data;
  }

  /**
   * Ends this session (the user goes offline unless another session of
   * theirs is active); the cookie is cleared and the kept token forgotten.
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<null>}
   */
  async logout(opts = {}) {
    const r = await this.request('POST', '/api/auth/logout/', undefined, opts);
    if (this.auth === 'token') this.token = null;
    return r;
  }

  /**
   * Ends every session of the caller; the user goes offline.
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<null>}
   */
  async logoutAll(opts = {}) {
    const r = await this.request('POST', '/api/auth/logout-all/', undefined, opts);
    if (this.auth === 'token') this.token = null;
    return r;
  }

  /** The caller's user object. @param {{signal?: AbortSignal}} [opts] @returns {Promise<User>} */
  me(opts = {}) {
    return this.request('GET', '/api/users/me/', undefined, opts);
  }

  /**
   * The caller is active: online, `last_seen` now (written at most once per
   * the server's activity interval while online).
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<{user_id: number, online_status: Status, last_seen: string|null, is_online: boolean}>}
   */
  heartbeat(opts = {}) {
    return this.request('POST', '/api/users/me/heartbeat/', undefined, opts);
  }

  // ---- the seed's three calls ---------------------------------------------

  /**
   * Sets a user's status (staff, or the user themself). `manual: true`
   * with away or offline keeps it against everything automatic (API.md §12).
   * @param {number} id
   * @param {Status} status
   * @param {{manual?: boolean, signal?: AbortSignal}} [opts]
   * @returns {Promise<SetStatusReply>}
   */
  setOnlineStatus(id, status, opts = {}) {
    return this.request('POST', `/api/users/admin/users/${idPath(id)}/set-online-status/`,
      { status, ...apiFields(opts) }, opts);
  }

  /** One user's status. @param {number} id @param {{signal?: AbortSignal}} [opts] @returns {Promise<StatusInfo>} */
  getOnlineStatus(id, opts = {}) {
    return this.request('GET', `/api/users/admin/users/${idPath(id)}/online-status/`, undefined, opts);
  }

  /**
   * One page of the online users, newest `last_seen` first.
   * @param {{page?: number, perPage?: number, signal?: AbortSignal}} [opts]
   * @returns {Promise<{online_users: User[], online_count: number, pagination: Pagination}>}
   */
  getOnlineUsers(opts = {}) {
    return this.request('GET', '/api/users/admin/users/online/' + queryString(opts), undefined, opts);
  }

  // ---- more presence -------------------------------------------------------

  /**
   * The statuses of up to 100 users at once, in the order asked (unknown ids left out).
   * @param {number[]} ids
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<{statuses: StatusInfo[]}>}
   */
  getOnlineStatuses(ids, opts = {}) {
    return this.request('GET', '/api/users/admin/users/online-status/' + queryString({ ids: ids.map(idPath) }), undefined, opts);
  }

  /**
   * Sets the caller's own status (`manual` as in setOnlineStatus).
   * @param {Status} status
   * @param {{manual?: boolean, signal?: AbortSignal}} [opts]
   * @returns {Promise<SetStatusReply>}
   */
  setMyStatus(status, opts = {}) {
    return this.request('POST', '/api/users/me/online-status/', { status, ...apiFields(opts) }, opts);
  }

  /**
   * The presence change log, for clients that poll instead of streaming.
   * A `since` older than the log's retention rejects with status 410.
   * @param {{since?: number, limit?: number, signal?: AbortSignal}} [opts]
   * @returns {Promise<{changes: Array<StatusInfo & {seq: number}>, next_since: number}>}
   */
  getChanges(opts = {}) {
    return this.request('GET', '/api/users/presence/changes/' + queryString(opts), undefined, opts);
  }

  // ---- users (staff) ------------------------------------------------------

  /**
   * The management list, filtered, searched, ordered and paginated by the server.
   * @param {{onlineStatus?: Status, isActive?: boolean, isStaff?: boolean, search?: string,
   *   ordering?: string, page?: number, perPage?: number, signal?: AbortSignal}} [opts]
   * @returns {Promise<{users: User[], pagination: Pagination}>}
   */
  listUsers(opts = {}) {
    return this.request('GET', '/api/users/management/list/' + queryString(opts), undefined, opts);
  }

  /**
   * Creates a user (`username` and `password` required; `email`,
   * `firstName`, `lastName`, `isStaff`, `isActive` optional — API names work too).
   * @param {UserFields & {username: string, password: string}} fields
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<User>}
   */
  createUser(fields, opts = {}) {
    return this.request('POST', '/api/users/management/users/', apiFields(fields), opts);
  }

  /** One user. @param {number} id @param {{signal?: AbortSignal}} [opts] @returns {Promise<User>} */
  getUser(id, opts = {}) {
    return this.request('GET', `/api/users/management/users/${idPath(id)}/`, undefined, opts);
  }

  /**
   * Changes the fields given (a new `password` ends the user's other sessions).
   * @param {number} id
   * @param {UserFields} fields
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<User>}
   */
  updateUser(id, fields, opts = {}) {
    return this.request('PATCH', `/api/users/management/users/${idPath(id)}/`, apiFields(fields), opts);
  }

  /** Deletes a user, their sessions and presence. @param {number} id @param {{signal?: AbortSignal}} [opts] @returns {Promise<null>} */
  deleteUser(id, opts = {}) {
    return this.request('DELETE', `/api/users/management/users/${idPath(id)}/`, undefined, opts);
  }

  // ---- statistics and history ---------------------------------------------

  /** The figures (staff). @param {{signal?: AbortSignal}} [opts] @returns {Promise<Statistics>} */
  getStatistics(opts = {}) {
    return this.request('GET', '/api/users/management/statistics/', undefined, opts);
  }

  /**
   * Users online over time (staff). `from`/`to` are Dates or RFC 3339 strings.
   * @param {{from?: Date|string, to?: Date|string, bucket?: '1m'|'5m'|'1h'|'1d', signal?: AbortSignal}} [opts]
   * @returns {Promise<{from: string, to: string, bucket: string, points: Array<{at: string,
   *   online: number|null, away: number|null, offline: number|null, online_max: number|null}>}>}
   */
  getStatisticsHistory(opts = {}) {
    return this.request('GET', '/api/users/management/statistics/history/' + queryString(opts), undefined, opts);
  }

  /**
   * One user's presence history (staff, or the user themself).
   * @param {number} id
   * @param {{from?: Date|string, to?: Date|string, signal?: AbortSignal}} [opts]
   * @returns {Promise<{user_id: number, from: string, to: string,
   *   intervals: Array<{status: Status|'unknown', from: string, to: string}>,
   *   totals: {online: number, away: number, offline: number, unknown: number}}>}
   */
  getPresenceHistory(id, opts = {}) {
    return this.request('GET', `/api/users/admin/users/${idPath(id)}/presence-history/` + queryString(opts), undefined, opts);
  }

  // ---- sessions -------------------------------------------------------------

  /** The caller's sessions, most recently used first. @param {{signal?: AbortSignal}} [opts] @returns {Promise<{sessions: Session[]}>} */
  getMySessions(opts = {}) {
    return this.request('GET', '/api/users/me/sessions/', undefined, opts);
  }

  /** Revokes one of the caller's sessions. @param {number} sessionId @param {{signal?: AbortSignal}} [opts] @returns {Promise<null>} */
  revokeMySession(sessionId, opts = {}) {
    return this.request('DELETE', `/api/users/me/sessions/${idPath(sessionId)}/`, undefined, opts);
  }

  /** A user's sessions (staff). @param {number} userId @param {{signal?: AbortSignal}} [opts] @returns {Promise<{sessions: Session[]}>} */
  getUserSessions(userId, opts = {}) {
    return this.request('GET', `/api/users/management/users/${idPath(userId)}/sessions/`, undefined, opts);
  }

  /** Revokes every session of a user (staff); they go offline. @param {number} userId @param {{signal?: AbortSignal}} [opts] @returns {Promise<null>} */
  revokeUserSessions(userId, opts = {}) {
    return this.request('DELETE', `/api/users/management/users/${idPath(userId)}/sessions/`, undefined, opts);
  }

  // ---- status message and do not disturb ----------------------------------

  /**
   * Sets the caller's status message, or a user's with `userId` (staff).
   * @param {string} text 1–100 characters
   * @param {{expiresAt?: Date|string, expiresIn?: number, userId?: number, signal?: AbortSignal}} [opts]
   * @returns {Promise<StatusMessage>}
   */
  setStatusMessage(text, opts = {}) {
    return this.request('PUT', this._mine(opts.userId, 'status-message'), { text, ...apiFields(opts, ['userId']) }, opts);
  }

  /** Clears the status message (the caller's, or a user's with `userId`). @param {{userId?: number, signal?: AbortSignal}} [opts] @returns {Promise<null>} */
  clearStatusMessage(opts = {}) {
    return this.request('DELETE', this._mine(opts.userId, 'status-message'), undefined, opts);
  }

  /**
   * Turns do not disturb on: until a time, for some minutes (1–10080), or
   * (neither) until turned off; the caller's, or a user's with `userId` (staff).
   * @param {{until?: Date|string, minutes?: number, userId?: number, signal?: AbortSignal}} [opts]
   * @returns {Promise<{until: string|null}>}
   */
  setDnd(opts = {}) {
    return this.request('PUT', this._mine(opts.userId, 'dnd'), apiFields(opts, ['userId']), opts);
  }

  /** Turns do not disturb off. @param {{userId?: number, signal?: AbortSignal}} [opts] @returns {Promise<null>} */
  clearDnd(opts = {}) {
    return this.request('DELETE', this._mine(opts.userId, 'dnd'), undefined, opts);
  }

  /** @private */
  _mine(userId, what) {
    return userId === undefined || userId === null ? `/api/users/me/${what}/` : `/api/users/management/users/${idPath(userId)}/${what}/`;
  }

  // ---- live -------------------------------------------------------------------

  /**
   * A live map of users' presence, kept from the presence stream.
   * With `ids` (1–1000 user ids, a contact list) it starts from the
   * server's snapshot of those users and follows only them; without, it
   * holds the users whose status changed since it started, the
   * `maxUsers` (10,000) most recently changed.
   * `lastEventId` resumes from an earlier Presence's `lastEventId`: the
   * events since then come first (with ids, after the snapshot the server
   * sends first on every connection).
   * @param {{ids?: number[], lastEventId?: string, maxUsers?: number}} [opts]
   * @returns {Presence}
   */
  presence(opts = {}) {
    return new Presence(this, opts);
  }

  /**
   * Keeps the caller online: a heartbeat now and every `interval` ms while
   * the page is visible (the Page Visibility API); none while it is hidden,
   * one at once when it shows again. Outside a browser it is always
   * "visible". It stops by itself on a 401 (the session ended). Returns
   * the function that stops it.
   * @param {{interval?: number, document?: {visibilityState: string,
   *   addEventListener: Function, removeEventListener: Function},
   *   onError?: (err: Error) => void}} [opts]
   * @returns {() => void}
   */
  keepOnline(opts = {}) {
    const interval = opts.interval || 30000;
    const doc = opts.document || (hasDocument() ? document : null);
    let timer = 0;
    let stopped = false;
    const beat = () => {
      this.heartbeat().catch((e) => {
        if (e.status === 401) stop(); // the session is gone: nothing to keep
        if (opts.onError) opts.onError(e);
      });
    };
    const update = () => {
      clearInterval(timer);
      timer = 0;
      if (stopped || (doc && doc.visibilityState === 'hidden')) return;
      beat();
      timer = setInterval(beat, interval);
    };
    const stop = () => {
      stopped = true;
      clearInterval(timer);
      if (doc) doc.removeEventListener('visibilitychange', update);
    };
    if (doc) doc.addEventListener('visibilitychange', update);
    update();
    return stop;
  }
}

/**
 * Reads Server-Sent Events from a fetch Response body: calls onEvent({type,
 * data, id}) per event and onRetry(ms) per `retry:` field; resolves when
 * the body ends. The parsing follows the HTML standard's rules for
 * text/event-stream (any line ending; `:` comments; an event without data
 * is not dispatched; the last event id persists across events).
 * @private
 */
async function readEvents(body, onEvent, onRetry, onBytes) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let type = '';
  let data = [];
  let sawData = false;
  let id = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onBytes();
      buf += decoder.decode(value, { stream: true });
      let m;
      while ((m = /\r\n|\r|\n/.exec(buf))) {
        // A lone \r at the end may be the first half of \r\n: wait for more.
        if (m[0] === '\r' && m.index === buf.length - 1) break;
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line === '') {
          if (sawData) onEvent({ type: type || 'message', data: data.join('\n'), id });
          type = '';
          data = [];
          sawData = false;
          continue;
        }
        if (line[0] === ':') continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'event') type = value;
        else if (field === 'data') { data.push(value); sawData = true; }
        else if (field === 'id' && !value.includes('\0')) id = value;
        else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * A live map of users' presence (from `Usersd.presence()`). `users` is a
 * Map of user id -> the user's latest status object ({user_id, username,
 * online_status, last_seen, is_online}, plus `status_message` and `dnd`
 * once known). It follows the stream: the snapshot, then events; after a
 * dropped connection it reconnects by itself (backing off, up to 30 s
 * apart) and resumes from the last event id, so nothing is missed; when
 * the server says the gap is too old (`event: resync`, or HTTP 410) it
 * reloads the state.
 */
export class Presence {
  /** @param {Usersd} client @param {{ids?: number[], lastEventId?: string, maxUsers?: number}} opts */
  constructor(client, opts = {}) {
    this.client = client;
    /** @type {number[]|null} */
    this.ids = opts.ids ? opts.ids.map((i) => Number(idPath(i))) : null;
    if (this.ids && this.ids.length === 0) throw new TypeError('presence({ids}) needs at least one id');
    this._idSet = this.ids ? new Set(this.ids) : null;
    this._max = this.ids ? Infinity : opts.maxUsers || 10000;
    /** @type {Map<number, PresenceEntry>} */
    this.users = new Map();
    /** The id of the last event received ('' before any). */
    this.lastEventId = opts.lastEventId || '';
    /** @type {'connecting'|'live'|'reconnecting'|'closed'} */
    this.state = 'connecting';
    /** Why the stream stopped for good (state 'closed' by a refusal), else null. @type {UsersdError|null} */
    this.error = null;
    this._changeCbs = new Set();
    this._stateCbs = new Set();
    this._retry = 2000;
    this._failures = 0;
    this._timer = 0;
    this._watchdog = 0;
    this._ctl = null;
    this._closed = false;
    this._loaded = false; // a snapshot is in
    this._resync = false; // the next state read is a reload
    /**
     * Resolves once the stream is open (and, with ids, its snapshot is in),
     * or at close(); rejects with the UsersdError when the server refuses
     * the stream (then `state` is 'closed').
     * @type {Promise<void>}
     */
    this.ready = new Promise((resolve, reject) => { this._resolveReady = resolve; this._rejectReady = reject; });
    this.ready.catch(() => {}); // refused with nobody waiting: not an unhandled rejection
    this._connect();
  }

  /**
   * Calls cb(change) after every change of the map: `{type, userId, user,
   * previous}` with type `presence`, `status_message` or `dnd` (one user),
   * or `snapshot`, `resync` (the whole map reloaded; userId null).
   * Returns the function that removes cb.
   * @param {(change: PresenceChange) => void} cb
   * @returns {() => void}
   */
  onChange(cb) {
    this._changeCbs.add(cb);
    return () => this._changeCbs.delete(cb);
  }

  /**
   * Calls cb(state) when the connection's state changes: `live`,
   * `reconnecting`, `closed`. Returns the function that removes cb.
   * @param {(state: string) => void} cb
   * @returns {() => void}
   */
  onState(cb) {
    this._stateCbs.add(cb);
    return () => this._stateCbs.delete(cb);
  }

  /** One user's presence, or undefined. @param {number} id @returns {PresenceEntry|undefined} */
  get(id) {
    return this.users.get(id);
  }

  /** Stops following: closes the stream, cancels any reconnect. */
  close() {
    this._closed = true;
    this._resolveReady();
    clearTimeout(this._timer);
    clearTimeout(this._watchdog);
    if (this._ctl) this._ctl.abort();
    this._ctl = null;
    this._setState('closed');
  }

  /** @private */
  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    for (const cb of [...this._stateCbs]) cb(s);
  }

  /** @private */
  _emit(type, userId, user, previous) {
    const change = { type, userId, user, previous };
    for (const cb of [...this._changeCbs]) cb(change);
  }

  /** Aborts the connection when nothing (not even a keepalive) came for too long. @private */
  _alive(ctl) {
    clearTimeout(this._watchdog);
    this._watchdog = setTimeout(() => ctl.abort(), KEEPALIVE_TIMEOUT);
  }

  /** @private */
  async _connect() {
    if (this._closed) return;
    const c = this.client;
    const ctl = new AbortController();
    this._ctl = ctl;
    const headers = { Accept: 'text/event-stream' };
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    const path = '/api/users/presence/stream/' + (this.ids ? '?ids=' + this.ids.join(',') : '');
    this._alive(ctl);
    try {
      const resp = await c._fetch(c.baseUrl + path, c._init('GET', headers, ctl.signal));
      if (resp.status === 410) { // the server no longer has what we missed: start afresh
        await resp.body?.cancel();
        this.lastEventId = '';
        this._resync = true;
        return this._again(0);
      }
      if (!resp.ok) {
        let data = null;
        try { data = await resp.json(); } catch (e) { /* not JSON */ }
        // Retried: the server busy or away (429, 5xx); anything else is final.
        if (resp.status === 429 || resp.status >= 500) return this._again();
        const err = new UsersdError(resp.status, (data && data.error) || `The server answered ${resp.status}.`, data && data.fields, data);
        if (resp.status === 401 && c.onUnauthorized) c.onUnauthorized(err);
        this.error = err;
        this._rejectReady(err);
        return this.close();
      }
      this._failures = 0;
      // A stream with ids and no event id starts with its snapshot: the
      // map is current once that is in. Otherwise it is current now (a
      // resumed stream replays what it missed first).
      if (!this.ids || this.lastEventId) this._opened();
      await readEvents(resp.body, (ev) => this._event(ev), (ms) => { this._retry = ms; }, () => this._alive(ctl));
    } catch (e) {
      if (this._closed) return;
    }
    if (ctl === this._ctl) this._again();
  }

  /** The stream is open and the map is current. @private */
  _opened() {
    this._setState('live');
    this._resolveReady();
    if (this._resync && !this.ids) {
      this._resync = false;
      this._reloadAll();
    }
  }

  /** Waits, then reconnects: the server's retry, doubled per failure in a row, at most 30 s. @private */
  _again(wait) {
    clearTimeout(this._watchdog);
    if (this._closed) return;
    this._setState('reconnecting');
    if (wait === undefined) {
      wait = Math.min(RETRY_MAX, this._retry * 2 ** Math.min(this._failures, 4));
      wait = Math.round(wait * (0.8 + 0.4 * Math.random())); // many clients do not come back at once
      this._failures++;
    }
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), wait);
  }

  /** @private */
  _event(ev) {
    if (ev.id) this.lastEventId = ev.id;
    if (ev.type === 'resync') {
      // Missed more than the log keeps. A stream with ids sends its
      // snapshot next (a reload); without, the users known are read again.
      if (this.ids) this._resync = true;
      else this._reloadAll();
      return;
    }
    let d;
    try { d = JSON.parse(ev.data); } catch (e) { return; }
    if (ev.type === 'snapshot') {
      const previous = new Map(this.users);
      this.users.clear();
      for (const s of d.statuses || []) this.users.set(s.user_id, { ...previous.get(s.user_id), ...s });
      // The first one fills the map, and so does the one a resumed stream
      // starts with (API.md §7; the replay follows it); one after a resync
      // or a 410 reloads it.
      const type = this._loaded && this._resync ? 'resync' : 'snapshot';
      this._loaded = true;
      this._resync = false;
      this._opened();
      this._emit(type, null, null, previous);
      return;
    }
    if (ev.type !== 'presence' && ev.type !== 'status_message' && ev.type !== 'dnd') return;
    if (this._idSet && !this._idSet.has(d.user_id)) return;
    const previous = this.users.get(d.user_id);
    const user = { ...previous, ...d };
    // Without ids the map is in the order of change, the oldest dropped
    // past maxUsers; with ids it keeps the order asked.
    if (!this.ids) this.users.delete(d.user_id);
    this.users.set(d.user_id, user);
    if (this.users.size > this._max) this.users.delete(this.users.keys().next().value);
    this._emit(ev.type, d.user_id, user, previous);
  }

  /** Reads the state of every user in the map again (100 at a time). @private */
  async _reloadAll() {
    const ids = [...this.users.keys()];
    const previous = new Map(this.users);
    try {
      for (let i = 0; i < ids.length; i += BULK_MAX) {
        const r = await this.client.getOnlineStatuses(ids.slice(i, i + BULK_MAX));
        const seen = new Set();
        for (const s of r.statuses) {
          seen.add(s.user_id);
          this.users.set(s.user_id, { ...this.users.get(s.user_id), ...s });
        }
        for (const id of ids.slice(i, i + BULK_MAX)) if (!seen.has(id)) this.users.delete(id);
      }
    } catch (e) {
      if (this._closed) return;
    }
    if (!this._closed) this._emit('resync', null, null, previous);
  }
}

/**
 * @typedef {'online'|'away'|'offline'} Status
 * @typedef {{text: string, expires_at: string|null}} StatusMessage
 * @typedef {{until: string|null}} Dnd
 * @typedef {{id: number, username: string, email?: string, first_name: string, last_name: string,
 *   is_active: boolean, is_staff: boolean, date_joined: string, online_status: Status,
 *   last_seen: string|null, is_online: boolean, status_message?: StatusMessage|null,
 *   dnd?: Dnd|null, status_manual?: boolean}} User
 * @typedef {{username?: string, password?: string, email?: string, firstName?: string,
 *   lastName?: string, isStaff?: boolean, isActive?: boolean}} UserFields
 * @typedef {{user_id: number, username: string, online_status: Status, last_seen: string|null,
 *   is_online: boolean, dnd?: Dnd|null}} StatusInfo
 * @typedef {StatusInfo & {status_message?: StatusMessage|null}} PresenceEntry
 * @typedef {{message: string, user_id: number, online_status: Status, last_seen: string|null,
 *   status_manual?: boolean}} SetStatusReply
 * @typedef {{page: number, per_page: number, total_pages: number, total_count: number,
 *   has_next: boolean, has_previous: boolean}} Pagination
 * @typedef {{total_users: number, active_users: number, inactive_users: number,
 *   staff_users: number, online_users: number, away_users: number, offline_users: number,
 *   online_ratio: number}} Statistics
 * @typedef {{id: number, created: string, last_used: string, user_agent: string,
 *   client_ip: string, current: boolean}} Session
 * @typedef {{type: 'presence'|'status_message'|'dnd'|'snapshot'|'resync', userId: number|null,
 *   user: PresenceEntry|null, previous: PresenceEntry|Map<number, PresenceEntry>|undefined}} PresenceChange
 */
