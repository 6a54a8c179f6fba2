// usersd.d.ts — types for usersd.js, the JavaScript client of usersd
// (served at /client/usersd.d.ts beside /client/usersd.js). Replies are
// the API's own JSON objects, with its snake_case names (API.md).

export type Status = 'online' | 'away' | 'offline';

export interface StatusMessage { text: string; expires_at: string | null; }
export interface Dnd { until: string | null; }

/** The user object of every reply that carries a user. */
export interface User {
  id: number;
  username: string;
  /** Shown only to staff and to the user themself. */
  email?: string;
  first_name: string;
  last_name: string;
  is_active: boolean;
  is_staff: boolean;
  date_joined: string;
  online_status: Status;
  last_seen: string | null;
  is_online: boolean;
  status_message?: StatusMessage | null;
  dnd?: Dnd | null;
  /** Shown only to the user themself and to staff. */
  status_manual?: boolean;
}

/** The fields of createUser / updateUser: camelCase or the API's names. */
export interface UserFields {
  username?: string;
  password?: string;
  email?: string;
  firstName?: string;
  lastName?: string;
  isStaff?: boolean;
  isActive?: boolean;
  first_name?: string;
  last_name?: string;
  is_staff?: boolean;
  is_active?: boolean;
}

export interface StatusInfo {
  user_id: number;
  username: string;
  online_status: Status;
  last_seen: string | null;
  is_online: boolean;
  dnd?: Dnd | null;
}

/** What a Presence map holds per user. */
export interface PresenceEntry extends StatusInfo {
  status_message?: StatusMessage | null;
}

export interface SetStatusReply {
  message: string;
  user_id: number;
  online_status: Status;
  last_seen: string | null;
  status_manual?: boolean;
}

export interface Pagination {
  page: number;
  per_page: number;
  total_pages: number;
  total_count: number;
  has_next: boolean;
  has_previous: boolean;
}

export interface Statistics {
  total_users: number;
  active_users: number;
  inactive_users: number;
  staff_users: number;
  online_users: number;
  away_users: number;
  offline_users: number;
  online_ratio: number;
}

export interface Session {
  id: number;
  created: string;
  last_used: string;
  user_agent: string;
  client_ip: string;
  current: boolean;
}

export interface PresenceHistory {
  user_id: number;
  from: string;
  to: string;
  intervals: Array<{ status: Status | 'unknown'; from: string; to: string }>;
  totals: { online: number; away: number; offline: number; unknown: number };
}

export interface StatisticsHistory {
  from: string;
  to: string;
  bucket: '1m' | '5m' | '1h' | '1d';
  points: Array<{ at: string; online: number | null; away: number | null; offline: number | null; online_max: number | null }>;
}

/** Every method's last argument may carry an AbortSignal. */
export interface CallOptions { signal?: AbortSignal; }

export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:8000`; default: the page's own origin. */
  baseUrl?: string;
  /** A token from a login elsewhere, sent as `Authorization: Token …`. */
  token?: string;
  /** The session cookie (default in a page) or the token login() returns (default in Node). */
  auth?: 'cookie' | 'token';
  /** Called on a 401 of any call but login(); set `err.handled = true` to tell your callers. */
  onUnauthorized?: (err: UsersdError) => void;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** A failed call: the HTTP status (0: the server could not be reached) and the API's sentence. */
export class UsersdError extends Error {
  constructor(status: number, message: string, fields?: Record<string, string>, body?: unknown);
  readonly name: 'UsersdError';
  status: number;
  /** The inputs at fault, e.g. `{ username: "…" }`. */
  fields: Record<string, string>;
  /** The whole JSON reply. */
  body: any;
  /** Set by an onUnauthorized handler that dealt with it. */
  handled?: boolean;
}

export interface PresenceChange {
  /** One user's change (presence, status_message, dnd) or the whole map (snapshot, resync). */
  type: 'presence' | 'status_message' | 'dnd' | 'snapshot' | 'resync';
  userId: number | null;
  user: PresenceEntry | null;
  previous: PresenceEntry | Map<number, PresenceEntry> | undefined;
}

/** A live map of users' presence, kept from the stream (Usersd.presence()). */
export class Presence {
  /** User id -> presence, kept current. */
  readonly users: Map<number, PresenceEntry>;
  readonly ids: number[] | null;
  /** The id of the last event received ('' before any). */
  readonly lastEventId: string;
  readonly state: 'connecting' | 'live' | 'reconnecting' | 'closed';
  /** Why the stream stopped for good (a refusal such as 401), else null. */
  readonly error: UsersdError | null;
  /** Resolves once the stream is open (with ids: once the snapshot is in) or at close();
   *  rejects with the UsersdError when the server refuses the stream. */
  readonly ready: Promise<void>;
  onChange(cb: (change: PresenceChange) => void): () => void;
  onState(cb: (state: 'live' | 'reconnecting' | 'closed') => void): () => void;
  get(id: number): PresenceEntry | undefined;
  close(): void;
}

export interface VisibilitySource {
  visibilityState: string;
  addEventListener(type: 'visibilitychange', cb: () => void): void;
  removeEventListener(type: 'visibilitychange', cb: () => void): void;
}

export class Usersd {
  constructor(options?: ClientOptions);
  baseUrl: string;
  token: string | null;
  auth: 'cookie' | 'token';
  onUnauthorized: ((err: UsersdError) => void) | null;

  /** Any API call: the parsed reply (null for 204), or a UsersdError. */
  request(method: string, path: string, body?: unknown, opts?: CallOptions): Promise<any>;

  login(username: string, password: string, opts?: CallOptions): Promise<{ token: string; user: User }>;
  logout(opts?: CallOptions): Promise<null>;
  logoutAll(opts?: CallOptions): Promise<null>;
  me(opts?: CallOptions): Promise<User>;
  heartbeat(opts?: CallOptions): Promise<{ user_id: number; online_status: Status; last_seen: string | null; is_online: boolean }>;

  // the seed's calls
  setOnlineStatus(id: number, status: Status, opts?: CallOptions & { manual?: boolean }): Promise<SetStatusReply>;
  getOnlineStatus(id: number, opts?: CallOptions): Promise<StatusInfo>;
  getOnlineUsers(opts?: CallOptions & { page?: number; perPage?: number }): Promise<{ online_users: User[]; online_count: number; pagination: Pagination }>;

  getOnlineStatuses(ids: number[], opts?: CallOptions): Promise<{ statuses: StatusInfo[] }>;
  setMyStatus(status: Status, opts?: CallOptions & { manual?: boolean }): Promise<SetStatusReply>;
  getChanges(opts?: CallOptions & { since?: number; limit?: number }): Promise<{ changes: Array<StatusInfo & { seq: number }>; next_since: number }>;

  // users (staff)
  listUsers(opts?: CallOptions & {
    onlineStatus?: Status; isActive?: boolean; isStaff?: boolean; search?: string;
    ordering?: string; page?: number; perPage?: number;
  }): Promise<{ users: User[]; pagination: Pagination }>;
  createUser(fields: UserFields & { username: string; password: string }, opts?: CallOptions): Promise<User>;
  getUser(id: number, opts?: CallOptions): Promise<User>;
  updateUser(id: number, fields: UserFields, opts?: CallOptions): Promise<User>;
  deleteUser(id: number, opts?: CallOptions): Promise<null>;

  // statistics and history
  getStatistics(opts?: CallOptions): Promise<Statistics>;
  getStatisticsHistory(opts?: CallOptions & { from?: Date | string; to?: Date | string; bucket?: '1m' | '5m' | '1h' | '1d' }): Promise<StatisticsHistory>;
  getPresenceHistory(id: number, opts?: CallOptions & { from?: Date | string; to?: Date | string }): Promise<PresenceHistory>;

  // sessions
  getMySessions(opts?: CallOptions): Promise<{ sessions: Session[] }>;
  revokeMySession(sessionId: number, opts?: CallOptions): Promise<null>;
  getUserSessions(userId: number, opts?: CallOptions): Promise<{ sessions: Session[] }>;
  revokeUserSessions(userId: number, opts?: CallOptions): Promise<null>;

  // status message and do not disturb (the caller's, or a user's with userId: staff)
  setStatusMessage(text: string, opts?: CallOptions & { expiresAt?: Date | string; expiresIn?: number; userId?: number }): Promise<StatusMessage>;
  clearStatusMessage(opts?: CallOptions & { userId?: number }): Promise<null>;
  setDnd(opts?: CallOptions & { until?: Date | string; minutes?: number; userId?: number }): Promise<Dnd>;
  clearDnd(opts?: CallOptions & { userId?: number }): Promise<null>;

  // live
  /** With ids: those users, from a snapshot. Without: the maxUsers (10,000) most recently changed. */
  presence(opts?: { ids?: number[]; lastEventId?: string; maxUsers?: number }): Presence;
  /** Heartbeats while the page is visible (stopping by itself on a 401); returns the function that stops them. */
  keepOnline(opts?: { interval?: number; document?: VisibilitySource; onError?: (err: Error) => void }): () => void;
}
