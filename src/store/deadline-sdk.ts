// Bounds every call of an AWS SDK client by the current request's deadline (src/store/deadline.ts): a call that
// starts after the deadline fails at once, one under way is aborted when it comes (the SDK does not retry an
// abort) and answered with the 504 at that moment. Installed where clients are built, so the stores' call sites stay as they are.
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
    const result = send(command, { ...options, abortSignal }, cb) as Promise<unknown>;
    // The abort stops the HTTP request, but not a retry back-off the SDK is sleeping through: answer at the deadline
    // whatever the SDK is doing (it finishes on its own; no new attempt can start, the signal has fired).
    return new Promise((resolve, reject) => {
      const expire = () => {
        noteDeadlineHit();
        reject(deadlineExceeded());
      };
      signal.addEventListener('abort', expire, { once: true });
      result.then(
        (value) => {
          signal.removeEventListener('abort', expire);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', expire);
          if (signal.aborted) expire();
          else reject(err);
        },
      );
    });
  };
  return client;
}
