#!/usr/bin/env node
// lockholder.js: takes proper-lockfile locks the way Claude Code 2.1.197 does,
// for the credslots interop tests. One JSON object per line on stdout.
//
//   node lockholder.js hold --dir D --lock P [--lock P2 ...] [--ms N] [--stale 10000] [--update 5000] [--owner]
//       Takes every lock in order (retries 0), holds them until N ms have
//       passed (default 12000) or a line "release" arrives on stdin, then
//       releases them in reverse order. Events: acquired, elocked, error,
//       compromised, owner, released, done. --owner also writes the owner
//       record D/.oauth_refresh.lock.owner as Claude Code 2.1.332 does
//       (pid, procStart, pidDomain, pidSpace, lockBirthtimeMs and, with a
//       second lock, legacyLockBirthtimeMs) and removes it on release if it
//       is still its own. 2.1.332's refresh lock: --stale 60000 --update 5000.
//   node lockholder.js try --dir D --lock P [--stale 10000]
//       One attempt with retries 0. Prints acquired (then releases at once)
//       or elocked. Exit 0 acquired, 3 ELOCKED, 1 any other error.
//   node lockholder.js poll --dir D --lock P [--lock P2 ...] [--interval 250] [--max-ms 30000] [--stale 10000]
//       Attempts every lock every interval (retries 0); a lock once acquired
//       is released at once and not tried again. Prints one "attempt" event
//       per try; exits 0 when every lock was acquired once, 4 on max-ms.
//
// Like Claude Code (szr/U6r in its bundle): the first lock is taken as
// lockfile.lock(dir, {lockfilePath: P, realpath: false, stale: 10000}) with
// proper-lockfile's default heartbeat (update = stale/2 = 5000 ms); further
// locks (Claude Code's "legacy" lock <realpath(D)>.lock) are taken as
// lockfile.lock(P, {lockfilePath: P, realpath: false, stale: 10000}).
// Unlike Claude Code, a compromised lock is reported, not thrown.
'use strict';

const path = require('path');
const lockfile = require('proper-lockfile');

function parseArgs(argv) {
  const out = { mode: argv[0], locks: [] };
  for (let i = 1; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--dir': out.dir = v; i++; break;
      case '--lock': out.locks.push(v); i++; break;
      case '--ms': out.ms = Number(v); i++; break;
      case '--stale': out.stale = Number(v); i++; break;
      case '--update': out.update = Number(v); i++; break;
      case '--interval': out.interval = Number(v); i++; break;
      case '--max-ms': out.maxMs = Number(v); i++; break;
      case '--owner': out.owner = true; break;
      default:
        fail(`unknown argument ${k}`);
    }
  }
  if (!['hold', 'try', 'poll'].includes(out.mode)) fail('mode must be hold, try or poll');
  if (!out.dir || out.locks.length === 0) fail('need --dir and at least one --lock');
  out.stale = out.stale || 10000;
  out.update = out.update || out.stale / 2;
  out.ms = out.ms === undefined ? 12000 : out.ms;
  out.interval = out.interval || 250;
  out.maxMs = out.maxMs || 30000;
  return out;
}

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, t: Date.now(), pid: process.pid, ...fields }) + '\n');
}

function fail(msg) {
  emit('error', { message: msg });
  process.exit(2);
}

function lockOptions(args, lockPath, onCompromised) {
  return {
    lockfilePath: lockPath,
    realpath: false,
    stale: args.stale,
    update: args.update,
    retries: 0,
    onCompromised,
  };
}

// Which "file" proper-lockfile keys the lock by: the creds dir for the first
// lock, the lock path itself for the others (as Claude Code does).
function lockTarget(args, index, lockPath) {
  return index === 0 ? args.dir : lockPath;
}

async function take(args, index, lockPath, onCompromised) {
  return lockfile.lock(lockTarget(args, index, lockPath), lockOptions(args, lockPath, onCompromised));
}

function mtimeOf(p) {
  try {
    return require('fs').statSync(p).mtimeMs;
  } catch (e) {
    return null;
  }
}

// ownerRecord builds the record the way Claude Code 2.1.332 computes it
// (read off its bundled code): procStart is field 22 of /proc/<pid>/stat,
// pidDomain "linux:<machine-id>:<pid namespace>", pidSpace
// "<hostname>#<pid namespace>", the birthtimes lstat's birthtimeMs.
function ownerRecord(locks) {
  const fs = require('fs');
  const os = require('os');
  const stat = fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8');
  const procStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  let ns = '';
  try { ns = fs.readlinkSync('/proc/self/ns/pid'); } catch (e) { ns = ''; }
  let machine = '';
  try { machine = fs.readFileSync('/etc/machine-id', 'utf8').trim(); } catch (e) { machine = ''; }
  const rec = {
    pid: process.pid,
    procStart,
    pidDomain: `linux:${machine}:${ns}`,
    pidSpace: `${os.hostname()}${ns === '' ? '' : '#' + ns}`,
    lockBirthtimeMs: fs.lstatSync(locks[0]).birthtimeMs,
  };
  if (locks.length > 1) rec.legacyLockBirthtimeMs = fs.lstatSync(locks[1]).birthtimeMs;
  return rec;
}

async function hold(args) {
  const releases = [];
  let compromised = false;
  for (let i = 0; i < args.locks.length; i++) {
    const p = path.resolve(args.locks[i]);
    try {
      const release = await take(args, i, p, (err) => {
        compromised = true;
        emit('compromised', { lock: p, code: err.code, message: err.message });
      });
      releases.push({ p, release });
      emit('acquired', { lock: p, mtime: mtimeOf(p) });
    } catch (err) {
      emit(err.code === 'ELOCKED' ? 'elocked' : 'error', { lock: p, code: err.code, message: err.message });
      for (const r of releases.reverse()) await r.release().catch(() => {});
      emit('done', { ok: false });
      process.exit(err.code === 'ELOCKED' ? 3 : 1);
    }
  }
  let ownerPath = null;
  let owned = null;
  if (args.owner) {
    ownerPath = path.join(args.dir, '.oauth_refresh.lock.owner');
    owned = ownerRecord(releases.map((r) => r.p));
    require('fs').writeFileSync(ownerPath, JSON.stringify(owned));
    emit('owner', { lock: ownerPath, message: JSON.stringify(owned) });
  }
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, args.ms);
    let buf = '';
    process.stdin.on('data', (d) => {
      buf += d.toString();
      if (buf.split('\n').some((l) => l.trim() === 'release')) {
        clearTimeout(timer);
        resolve();
      }
    });
    process.stdin.on('error', () => {});
  });
  process.stdin.pause();
  if (ownerPath !== null) {
    try {
      const cur = JSON.parse(require('fs').readFileSync(ownerPath, 'utf8'));
      if (cur.pid === owned.pid && cur.lockBirthtimeMs === owned.lockBirthtimeMs) require('fs').unlinkSync(ownerPath);
    } catch (e) {}
  }
  for (const r of releases.reverse()) {
    try {
      await r.release();
      emit('released', { lock: r.p });
    } catch (err) {
      emit('release_error', { lock: r.p, code: err.code, message: err.message });
    }
  }
  emit('done', { ok: !compromised, compromised });
  process.exit(compromised ? 5 : 0);
}

async function tryOnce(args) {
  const p = path.resolve(args.locks[0]);
  try {
    const release = await take(args, 0, p, () => {});
    emit('acquired', { lock: p });
    await release();
    emit('released', { lock: p });
    process.exit(0);
  } catch (err) {
    if (err.code === 'ELOCKED') {
      emit('elocked', { lock: p, mtime: mtimeOf(p) });
      process.exit(3);
    }
    emit('error', { lock: p, code: err.code, message: err.message });
    process.exit(1);
  }
}

async function poll(args) {
  const pending = args.locks.map((l, i) => ({ p: path.resolve(l), i }));
  const deadline = Date.now() + args.maxMs;
  while (pending.length > 0) {
    for (const item of [...pending]) {
      const mtime = mtimeOf(item.p);
      try {
        const release = await take(args, item.i, item.p, () => {});
        emit('attempt', { lock: item.p, result: 'acquired', mtime });
        await release();
        pending.splice(pending.indexOf(item), 1);
      } catch (err) {
        emit('attempt', {
          lock: item.p,
          result: err.code === 'ELOCKED' ? 'elocked' : 'error',
          code: err.code,
          message: err.message,
          mtime,
        });
      }
    }
    if (pending.length === 0) break;
    if (Date.now() > deadline) {
      emit('done', { ok: false, pending: pending.map((x) => x.p) });
      process.exit(4);
    }
    await new Promise((r) => setTimeout(r, args.interval));
  }
  emit('done', { ok: true });
  process.exit(0);
}

const args = parseArgs(process.argv.slice(2));
({ hold, try: tryOnce, poll })[args.mode](args).catch((err) => {
  emit('error', { message: String(err && err.stack || err) });
  process.exit(1);
});
