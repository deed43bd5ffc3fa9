// Starts one Mimoto server per test file: free port, fresh temp data dir,
// `mimoto demo-data`, then `mimoto serve`, waiting for GET /healthz.
import { spawn } from 'node:child_process';
import { accessSync, constants, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ARTIFACTS_DIR = fileURLToPath(new URL('../artifacts/', import.meta.url));

const HEALTH_TIMEOUT_MS = 30_000;
const DEMO_DATA_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;

/** Path of the server binary from MIMOTO_BIN; throws a clear error if unset or not executable. */
export function mimotoBin() {
  const raw = process.env.MIMOTO_BIN;
  if (!raw) {
    throw new Error(
      'MIMOTO_BIN is not set: point it at the built server binary, ' +
        'e.g. MIMOTO_BIN=$PWD/target/release/mimoto npm --prefix e2e test (or run `make test-e2e`)',
    );
  }
  const bin = path.resolve(raw);
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`MIMOTO_BIN=${raw} (${bin}) does not exist or is not executable; build the server first`);
  }
  return bin;
}

/** A free TCP port on 127.0.0.1 (bind to port 0, read it back, release it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tail(file, lines = 40) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function runOnce(bin, args, env, log, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`\`mimoto ${args.join(' ')}\` did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`\`mimoto ${args.join(' ')}\` exited with ${signal ?? code}`));
    });
  });
}

/**
 * Runs `mimoto <args>` once against a running server's data (same environment), e.g. the
 * operator CLI. Resolves with its stdout; rejects with stderr when it exits non-zero.
 */
function runCli(bin, args, env, log, timeoutMs = DEMO_DATA_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`\`mimoto ${args.join(' ')}\` did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // The log gets the command and its exit, never its output (it may hold secrets).
      log.write(`$ ${bin} ${args.join(' ')}   → exit ${signal ?? code}\n`);
      if (code === 0) resolve(stdout);
      else reject(new Error(`\`mimoto ${args.join(' ')}\` exited with ${signal ?? code}\n${stderr}`));
    });
  });
}

/**
 * Start a server for one test file.
 * @param {string} name  used for the log file name: artifacts/server-<name>.log
 * @param {{env?: Record<string, string>, host?: string}} [options]  extra environment for the
 *   server; `host` is the name pages are opened with (default 127.0.0.1; `localhost` where a
 *   test needs WebAuthn, which browsers refuse on an IP address)
 * @returns {Promise<{baseURL: string, dataDir: string, logFile: string, stop: () => Promise<void>,
 *   cli: (args: string[], options?: {env?: Record<string, string>}) => Promise<string>}>}
 *   `cli` runs another `mimoto` command on the same data (e.g. `operator create`) and
 *   resolves with its stdout.
 */
export async function startServer(name = 'server', { env: extraEnv = {}, host = '127.0.0.1' } = {}) {
  const bin = mimotoBin();
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const logFile = path.join(ARTIFACTS_DIR, `server-${name}.log`);
  const log = createWriteStream(logFile);
  const port = await freePort();
  const baseURL = `http://${host}:${port}`;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mimoto-e2e-'));
  const env = {
    ...process.env,
    MIMOTO_LISTEN: `127.0.0.1:${port}`,
    MIMOTO_DATA_DIR: dataDir,
    MIMOTO_DEMO: '1',
    MIMOTO_PUBLIC_URL: baseURL,
    // The face models `make models` installs at the repository root (eKYC).
    MIMOTO_MODELS_DIR: process.env.MIMOTO_MODELS_DIR || fileURLToPath(new URL('../../models/', import.meta.url)),
    ...extraEnv,
  };

  const cleanupDir = () => rmSync(dataDir, { recursive: true, force: true });
  let child;
  let exited = null; // {code, signal} once the server process has gone
  const killOnExit = () => child?.kill('SIGKILL');

  const stop = async () => {
    process.off('exit', killOnExit);
    if (child && !exited) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await gone;
      clearTimeout(timer);
    }
    await new Promise((resolve) => log.end(resolve));
    cleanupDir();
  };

  try {
    log.write(`$ ${bin} demo-data\n`);
    await runOnce(bin, ['demo-data'], env, log, DEMO_DATA_TIMEOUT_MS);

    log.write(`$ ${bin} serve   (MIMOTO_LISTEN=${env.MIMOTO_LISTEN})\n`);
    child = spawn(bin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    process.on('exit', killOnExit);
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    const spawnError = new Promise((_, reject) => child.once('error', reject));
    spawnError.catch(() => {}); // handled via Promise.race below
    child.once('exit', (code, signal) => {
      exited = { code, signal };
    });

    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    for (;;) {
      if (exited) {
        throw new Error(`mimoto serve exited early (${exited.signal ?? exited.code})`);
      }
      try {
        const res = await Promise.race([
          fetch(`${baseURL}/healthz`, { signal: AbortSignal.timeout(2_000) }),
          spawnError,
        ]);
        if (res.status === 200) break;
      } catch (err) {
        if (err?.code === 'ENOENT' || err?.code === 'EACCES') throw err;
        // connection refused / timeout: not up yet
      }
      if (Date.now() > deadline) {
        throw new Error(`GET ${baseURL}/healthz did not return 200 within ${HEALTH_TIMEOUT_MS / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop().catch(() => {});
    err.message += `\n--- ${logFile} (last lines) ---\n${tail(logFile)}`;
    throw err;
  }

  const cli = (args, { env: cliEnv = {} } = {}) => runCli(bin, args, { ...env, ...cliEnv }, log);
  return { baseURL, dataDir, logFile, stop, cli };
}
