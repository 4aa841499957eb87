/**
 * Retries with exponential backoff and jitter, for `UNAVAILABLE` only: the one status that says
 * "the call did not happen, try again" (a restarting server, a dropped connection, storage that
 * is briefly unavailable). Only unary calls are retried, and only those that are safe to repeat;
 * a stream cannot be replayed once its messages are consumed. A per-call deadline bounds all
 * attempts together, not each one.
 */
import { Code } from "@connectrpc/connect";
import { TrellisError } from "./errors.js";

export interface RetryPolicy {
  /** Attempts in all, the first included; 1 disables retries. Default 4. */
  maxAttempts: number;
  /** Backoff before the second attempt, in milliseconds. Default 100. */
  initialBackoffMs: number;
  /** Upper bound of one backoff, in milliseconds. Default 2000. */
  maxBackoffMs: number;
  /** Growth of the backoff per attempt. Default 2. */
  multiplier: number;
  /** Called before each retry, e.g. to log it. */
  onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  /** The full method name, e.g. `trellis.v1.StrategyService/GetStrategy`. */
  readonly method: string;
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  /** How long the client waits before the next attempt. */
  readonly delayMs: number;
  readonly error: TrellisError;
}

export const defaultRetryPolicy: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 4,
  initialBackoffMs: 100,
  maxBackoffMs: 2000,
  multiplier: 2,
});

/**
 * The wait after failed attempt `attempt` (from 1): exponential, capped, with "equal jitter"
 * (half fixed, half random) so that many clients do not retry in lockstep.
 */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exponential = policy.initialBackoffMs * Math.pow(policy.multiplier, attempt - 1);
  const capped = Math.min(policy.maxBackoffMs, exponential);
  return capped / 2 + (random() * capped) / 2;
}

export function isRetryable(error: TrellisError): boolean {
  return error.code === Code.Unavailable;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new TrellisError(Code.Canceled, "the call was cancelled"));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new TrellisError(Code.Canceled, "the call was cancelled"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
