import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPTIONS } from '../../src/config.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = path.join(ROOT, 'dist', 'cli.js');

/** Our environment minus every variable the sidecar reads (so the host's settings never leak in), plus `extra`. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const option of Object.values(OPTIONS)) delete env[option.env];
  return { ...env, ...extra };
}

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface LaunchedCli {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  done: Promise<CliExit>;
}

const running = new Set<ChildProcess>();
// A test that fails half-way must not leave a sidecar behind holding a port.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** `node dist/cli.js ...args` from the repository root, collecting stdout and stderr. */
export function launchCli(args: readonly string[], env: NodeJS.ProcessEnv = cliEnv()): LaunchedCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<CliExit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, out: () => stdout, err: () => stderr, done };
}

/** Run the CLI to its exit (killed after `timeoutMs`). */
export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = cliEnv(), timeoutMs = 30_000): Promise<CliExit> {
  const { child, done } = launchCli(args, env);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}
