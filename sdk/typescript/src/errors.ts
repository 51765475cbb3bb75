/**
 * The error types of the SDK. Verification failures are {@link VerificationError}s with a short,
 * stable `code`; HTTP failures are {@link ApiError}s carrying the status and the service's error code.
 */

/** A check failed: a hash, proof, signature or format that does not hold. */
export class VerificationError extends Error {
  /** A short, stable word naming what failed, e.g. `signature`, `malformed`, `leaf_hash`. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "VerificationError";
    this.code = code;
  }
}

/** The service (or API Gateway in front of it) answered with an error status. */
export class ApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /**
   * The service's error code (`invalid_request`, `not_found`, `idempotency_conflict`, ...), or,
   * for API Gateway's own answers without one, `unauthorized` (401), `forbidden` (403) or
   * `throttled` (429).
   */
  readonly code: string;
  /** Seconds from the Retry-After header, when the response had one. */
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, code: string, message: string, retryAfterSeconds?: number) {
    super(`${status} ${code}: ${message}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The request never got an HTTP answer (connection refused, reset, timed out), even after retries. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NetworkError";
  }
}
