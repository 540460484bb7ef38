// Bounds every call of an AWS SDK client by the current request's deadline (src/store/deadline.ts): a call that
// starts after the deadline fails at once, one under way is aborted when it comes (the SDK does not retry an
// abort). Installed where clients are built, so the stores' call sites stay as they are.
import { checkDeadline, currentDeadline, deadlineExceeded, deadlineSignal, noteDeadlineHit } from './deadline.js';

interface SendOptions {
  abortSignal?: AbortSignal;
  [key: string]: unknown;
}

type Send = (command: unknown, options?: unknown, cb?: unknown) => unknown;

export function bindToDeadline<C extends { send: unknown }>(client: C): C {
  const send = (client.send as Send).bind(client);
  (client as { send: Send }).send = (command, optionsOrCb, cb) => {
    if (currentDeadline() === undefined || typeof optionsOrCb === 'function') return send(command, optionsOrCb, cb);
    try {
      checkDeadline();
    } catch (err) {
      return Promise.reject(err);
    }
    const options = (optionsOrCb ?? {}) as SendOptions;
    const signal = deadlineSignal()!;
    const abortSignal = options.abortSignal ? AbortSignal.any([options.abortSignal, signal]) : signal;
    const result = send(command, { ...options, abortSignal }, cb) as Promise<unknown> | undefined;
    return result?.catch((err: unknown) => {
      if (signal.aborted) {
        noteDeadlineHit();
        throw deadlineExceeded();
      }
      throw err;
    });
  };
  return client;
}
