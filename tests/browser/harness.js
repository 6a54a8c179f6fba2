'use strict';
// harness.js — what the browser tests, the docs screenshots and the
// client's Node tests (tests/js) share: the real usersd on a free loopback
// port, API calls from outside the page, and Debian's Chromium started with
// the flags this closed machine needs.
//
// Environment: USERSD_BIN (the binary), BROWSER_WORK (where node_modules
// is), CHROMIUM (default /usr/bin/chromium).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const WORK = path.resolve(process.env.BROWSER_WORK || path.join(ROOT, 'build-test', 'browser'));
const BIN = path.resolve(process.env.USERSD_BIN || path.join(ROOT, 'build-test', 'usersd'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ADMIN_PASSWORD = 'admin-password-1';

// Starts `usersd serve --listen LISTEN --db DB` (its log in DIR/server.log)
// and waits, at most 20 s, for the port it logs. Resolves {proc, port}.
function startServer(dir, db, listen, args = []) {
  const log = path.join(dir, 'server.log');
  const out = fs.openSync(log, 'a');
  const offset = fs.statSync(log).size;
  const env = { ...process.env, USERSD_ADMIN_PASSWORD: ADMIN_PASSWORD };
  for (const k of Object.keys(env)) if (k.startsWith('USERSD_') && k !== 'USERSD_ADMIN_PASSWORD') delete env[k];
  const proc = spawn(BIN, ['serve', '--listen', listen, '--db', db, '--threads', '2', ...args],
    { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 20000;
    const poll = () => {
      const text = fs.readFileSync(log, 'utf8').slice(offset);
      const m = text.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) return resolve({ proc, port: Number(m[1]) });
      if (proc.exitCode !== null) return reject(new Error('usersd exited on start:\n' + text));
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        return reject(new Error('usersd did not start in time:\n' + text));
      }
      setTimeout(poll, 50);
    };
    poll();
  });
}

// SIGTERM, then SIGKILL after 15 s; resolves the exit code.
function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
    proc.once('exit', (code) => { clearTimeout(t); resolve(code); });
    proc.kill('SIGTERM');
  });
}

// One API call as another client makes it: a header token, no cookie, no
// Origin. Resolves {status, body}.
async function call(base, method, p, body, token, userAgent) {
  const headers = {};
  if (token) headers.Authorization = 'Token ' + token;
  if (userAgent) headers['User-Agent'] = userAgent;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  return { status: resp.status, body: text ? JSON.parse(text) : null };
}

// Polls fn until it returns something truthy; fails the test after
// timeout ms (every wait of a test is bounded).
async function until(fn, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

// Headless Chromium. Playwright gives it a fresh, empty --user-data-dir of
// its own (removed at close); without the background-networking flags it
// keeps trying to reach Google's services from this closed network.
function launchBrowser() {
  // Required here, not above: tests/js uses this harness without a browser.
  const { chromium } = require(path.join(WORK, 'node_modules', 'playwright-core'));
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

module.exports = { ROOT, WORK, BIN, ADMIN_PASSWORD, startServer, stopServer, call, until, launchBrowser };
