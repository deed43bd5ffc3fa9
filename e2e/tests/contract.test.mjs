// API contract (issue #15, point 1): schemathesis, with every check, against a real server on
// SQLite and on PostgreSQL. The OpenAPI document the server serves is the contract: any 5xx,
// any status code or body the operation does not document, any schema-valid request refused
// (beyond the rules e2e/contract/schemathesis.toml names per operation) fails the test.
//
// Set-up per backend, through the API itself: member A registers and passes 本人確認 (demo
// roster, ヤマダ ハナコ) and opens an eKYC application; member B registers and opens a 本人確認
// flow; a registration and a password reset are started. Their ids and bearer tokens are
// handed to schemathesis (schemathesis.toml reads them from the environment), so the flow
// steps are exercised with live ids, not only answered 404.
//
// Two runs per backend: as those members, and as a caller without a valid session (every
// bearer token replaced by a revoked-looking one). Each run is bounded by
// MIMOTO_CONTRACT_SECONDS (default 40 s) and uses a fixed seed, so a failure reproduces.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ARTIFACTS_DIR, startServer } from '../lib/server.mjs';
import { ORG_ID, PASSWORD, uniqueEmail } from '../lib/flows.mjs';

const CONTRACT_DIR = fileURLToPath(new URL('../contract/', import.meta.url));
const VENV = process.env.MIMOTO_VENV || path.join(os.homedir(), '.cache', 'mimoto-venv');
const SCHEMATHESIS = path.join(VENV, 'bin', 'schemathesis');
const SECONDS = Number(process.env.MIMOTO_CONTRACT_SECONDS || 40);
const SEED = process.env.MIMOTO_CONTRACT_SEED || '20261130';
const MAIL_WAIT_MS = 15_000;
/** The demo roster's person for 133033 (pattern ④), as in identity.test.mjs. */
const HANAKO = { symbol: '1234', number: '5678', family: 'ヤマダ', given: 'ハナコ', birth: '1990-04-01' };

async function api(baseURL, method, route, { body, token } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${baseURL}${route}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  assert.ok(res.ok, `${method} ${route} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The newest one-time code mailed to `email`, from the demo outbox page. */
async function codeFor(baseURL, email) {
  const deadline = Date.now() + MAIL_WAIT_MS;
  for (;;) {
    const html = await (await fetch(`${baseURL}/dev/mail`)).text();
    for (const article of html.split('<article').slice(1)) {
      const m = article.match(/ワンタイムパスワード[:：]\s*(\d{6})/);
      if (article.includes(email) && m) return m[1];
    }
    assert.ok(Date.now() < deadline, `no code for ${email} at ${baseURL}/dev/mail`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** F1 through the API: returns the new member's bearer token. */
async function register(baseURL, email) {
  const { id } = await api(baseURL, 'POST', '/api/v1/registrations');
  const flow = `/api/v1/registrations/${id}`;
  await api(baseURL, 'POST', `${flow}/org-type`, { body: { org_type: 'health_insurance' } });
  await api(baseURL, 'POST', `${flow}/insurer`, { body: { insurer_number: ORG_ID } });
  const account = await api(baseURL, 'POST', `${flow}/account`, { body: { email, password: PASSWORD } });
  await api(baseURL, 'POST', `${flow}/consents`, { body: { accepted: account.consents_required.map((c) => c.doc) } });
  const code = await codeFor(baseURL, email);
  const done = await api(baseURL, 'POST', `${flow}/verify`, { body: { code } });
  return done.session.token;
}

/** The fixtures schemathesis.toml reads from the environment. */
async function fixtures(baseURL) {
  const emailA = uniqueEmail('contract-a');
  const tokenA = await register(baseURL, emailA);
  const idv = `/api/v1/identity-verifications`;
  const a = await api(baseURL, 'POST', idv, { token: tokenA });
  await api(baseURL, 'POST', `${idv}/${a.id}/insurer`, { token: tokenA, body: { insurer_number: ORG_ID } });
  await api(baseURL, 'POST', `${idv}/${a.id}/card`, {
    token: tokenA,
    body: { symbol: HANAKO.symbol, number: HANAKO.number },
  });
  await api(baseURL, 'POST', `${idv}/${a.id}/person`, {
    token: tokenA,
    body: { family_name: HANAKO.family, given_name: HANAKO.given, birth_date: HANAKO.birth },
  });
  await api(baseURL, 'POST', `${idv}/${a.id}/confirm`, { token: tokenA });
  // The consent to the handling of face images comes before eKYC (#16 point 8).
  await api(baseURL, 'POST', '/api/v1/consents/biometric', { token: tokenA });
  const ekyc = await api(baseURL, 'POST', '/api/v1/ekyc-applications', { token: tokenA });
  // A second session of A, for DELETE /sessions/current (it ends the session it is sent with).
  const logout = await api(baseURL, 'POST', '/api/v1/sessions', { body: { email: emailA, password: PASSWORD } });

  const emailB = uniqueEmail('contract-b');
  const tokenB = await register(baseURL, emailB);
  const b = await api(baseURL, 'POST', idv, { token: tokenB });

  // Member C, for /settings (its sessions may all be ended, its address changed), with an
  // email change waiting for its code.
  const emailC = uniqueEmail('contract-c');
  const tokenC = await register(baseURL, emailC);
  const change = await api(baseURL, 'POST', '/api/v1/settings/email', {
    token: tokenC,
    body: { new_email: uniqueEmail('contract-c-new'), current_password: PASSWORD },
  });

  const registration = await api(baseURL, 'POST', '/api/v1/registrations');
  const reset = await api(baseURL, 'POST', '/api/v1/password-resets', { body: { email: emailB } });
  return {
    MIMOTO_CONTRACT_TOKEN_A: tokenA,
    MIMOTO_CONTRACT_TOKEN_B: tokenB,
    MIMOTO_CONTRACT_TOKEN_LOGOUT: logout.token,
    MIMOTO_CONTRACT_TOKEN_C: tokenC,
    MIMOTO_CONTRACT_EMAIL_CHANGE_ID: change.id,
    MIMOTO_CONTRACT_EKYC_ID: ekyc.id,
    MIMOTO_CONTRACT_IDENTITY_ID: b.id,
    MIMOTO_CONTRACT_REGISTRATION_ID: registration.id,
    MIMOTO_CONTRACT_RESET_ID: reset.id,
  };
}

/** One bounded schemathesis run; resolves with its exit code and output. */
function schemathesis(baseURL, env, report) {
  return new Promise((resolve) => {
    const args = [
      '--config-file',
      path.join(CONTRACT_DIR, 'schemathesis.toml'),
      'run',
      `${baseURL}/api/v1/openapi.json`,
      '--url',
      baseURL,
      '--max-time',
      String(SECONDS),
      '--seed',
      SEED,
      '--report',
      'junit',
      '--report-junit-path',
      report,
    ];
    const child = spawn(SCHEMATHESIS, args, {
      env: { ...process.env, ...env, SCHEMATHESIS_HOOKS: 'hooks', PYTHONPATH: CONTRACT_DIR, NO_COLOR: '1' },
      cwd: CONTRACT_DIR,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    // Hard stop well past the run's own budget (set-up and shrinking included).
    const timer = setTimeout(() => child.kill('SIGKILL'), (SECONDS * 3 + 120) * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: signal ? `signal ${signal}` : code, out });
    });
  });
}

function createDatabase(name) {
  const url = new URL(process.env.MIMOTO_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/mimoto_test');
  const admin = ['-h', url.hostname, '-p', url.port || '5432', '-U', url.username || 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1'];
  const run = (sql) => {
    const r = spawnSync('psql', [...admin, '-qc', sql], { encoding: 'utf8' });
    assert.equal(r.status, 0, `psql ${sql}: ${r.stderr}`);
  };
  run(`DROP DATABASE IF EXISTS ${name}`);
  run(`CREATE DATABASE ${name}`);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

for (const backend of ['sqlite', 'postgres']) {
  test(`API contract on ${backend}: schemathesis, all checks, as members and without a session`, { timeout: (SECONDS * 2 * 3 + 420) * 1000 }, async (t) => {
    assert.ok(spawnSync(SCHEMATHESIS, ['--version']).status === 0, `${SCHEMATHESIS} missing: run scripts/ensure-schemathesis.sh (make test does)`);
    let db = null;
    const env = {};
    if (backend === 'postgres') {
      db = createDatabase(`mimoto_contract_${process.pid}`);
      env.MIMOTO_DATABASE_URL = db.url;
    }
    const server = await startServer(`contract-${backend}`, { env });
    try {
      const ids = await fixtures(server.baseURL);
      mkdirSync(ARTIFACTS_DIR, { recursive: true });
      const runs = [
        ['member', ids],
        [
          'anonymous',
          {
            ...ids,
            MIMOTO_CONTRACT_TOKEN_A: 'not-a-session',
            MIMOTO_CONTRACT_TOKEN_B: 'not-a-session',
            MIMOTO_CONTRACT_TOKEN_LOGOUT: 'not-a-session',
            MIMOTO_CONTRACT_TOKEN_C: 'not-a-session',
          },
        ],
      ];
      for (const [who, runEnv] of runs) {
        await t.test(`${who}`, async () => {
          const report = path.join(ARTIFACTS_DIR, `contract-${backend}-${who}.xml`);
          const { code, out } = await schemathesis(server.baseURL, runEnv, report);
          const summary = out
            .split('\n')
            .filter((l) => /generated|failures?/i.test(l))
            .map((l) => l.trim())
            .slice(-3)
            .join('; ');
          t.diagnostic(`${backend} ${who}: exit ${code}: ${summary}`);
          assert.equal(code, 0, `schemathesis found contract breaks (${backend}, ${who}); JUnit report: ${report}\n${out.slice(-20000)}`);
        });
      }
    } finally {
      await server.stop();
      db?.drop();
    }
  });
}
