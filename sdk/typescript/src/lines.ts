/**
 * Streaming line reader for export files: hashes the raw bytes as they arrive (SHA-256 over the
 * file as stored, compressed or not), optionally gunzips (every member of a multi-member gzip
 * file), and yields one line at a time without its `\n`, so memory stays bounded by the longest
 * line whatever the file size.
 */

import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Readable, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";

/** Bytes to read: an async or sync iterable of chunks (a Node stream, a fetch body), or one buffer. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array;

/**
 * The longest line accepted (newline excluded), as in the Rust verifier: an event's canonical
 * form is at most 64 KiB, so a valid row never comes near it, and memory stays bounded.
 */
export const MAX_LINE_BYTES = 8 << 20;

/** A file's bytes could not be read as lines (corrupt gzip, a line too long, a read error). */
export class LineReadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LineReadError";
  }
}

/** A byte source reading a file from disk in chunks. */
export function fileSource(path: string): AsyncIterable<Uint8Array> {
  return createReadStream(path, { highWaterMark: 64 * 1024 });
}

async function* chunksOf(source: ByteSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  for await (const chunk of source as AsyncIterable<Uint8Array>) {
    yield typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
  }
}

async function* hashed(source: ByteSource, hash: Hash, counter: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunksOf(source)) {
    hash.update(chunk);
    counter.bytes += chunk.length;
    yield chunk;
  }
}

/** Reads a source line by line while hashing its raw bytes; see {@link LineReader.sha256}. */
export class LineReader {
  private readonly hash = createHash("sha256");
  private readonly counter = { bytes: 0 };
  private readonly iterator: AsyncIterator<Buffer>;
  private finished = false;
  private digest: string | undefined;

  constructor(source: ByteSource, gzip: boolean) {
    this.iterator = this.lines(source, gzip)[Symbol.asyncIterator]();
  }

  private async *decompressed(source: ByteSource, gzip: boolean): AsyncGenerator<Uint8Array> {
    const raw = hashed(source, this.hash, this.counter);
    if (!gzip) {
      yield* raw;
      return;
    }
    const gunzip = createGunzip();
    // pipeline() destroys both streams on an error in either, so a read error surfaces here too.
    pipeline(Readable.from(raw), gunzip, () => {});
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (e) {
      throw new LineReadError(`the gzip data is corrupt: ${(e as Error).message}`, { cause: e });
    }
  }

  private async *lines(source: ByteSource, gzip: boolean): AsyncGenerator<Buffer> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (const chunk of this.decompressed(source, gzip)) {
      const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let start = 0;
      for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
        const piece = buf.subarray(start, nl);
        if (pendingBytes + piece.length > MAX_LINE_BYTES) throw new LineReadError(`the line is longer than ${MAX_LINE_BYTES} bytes`);
        yield pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
        pending = [];
        pendingBytes = 0;
        start = nl + 1;
      }
      if (start < buf.length) {
        // Copy: the chunk's buffer may be reused by the stream after we yield.
        pending.push(Buffer.from(buf.subarray(start)));
        pendingBytes += buf.length - start;
      }
      if (pendingBytes > MAX_LINE_BYTES) throw new LineReadError(`the line is longer than ${MAX_LINE_BYTES} bytes`);
    }
    // Every line ends in \n, the last one too.
    if (pendingBytes > 0) throw new LineReadError("the last line does not end with a newline");
  }

  /** The next line without its `\n`, or null at the end. Throws a LineReadError when reading fails. */
  async next(): Promise<Buffer | null> {
    if (this.finished) return null;
    let r: IteratorResult<Buffer>;
    try {
      r = await this.iterator.next();
    } catch (e) {
      this.finished = true;
      throw e instanceof LineReadError ? e : new LineReadError(`reading failed: ${(e as Error).message}`, { cause: e });
    }
    if (r.done) {
      this.finished = true;
      return null;
    }
    return r.value;
  }

  /** Reads everything left (so the hash covers the whole file), ignoring content. */
  async drain(): Promise<void> {
    while ((await this.next()) !== null) {
      // discard
    }
  }

  /** Stops reading and releases the source. */
  async close(): Promise<void> {
    this.finished = true;
    try {
      await this.iterator.return?.();
    } catch {
      // closing after an error
    }
  }

  /** Hex SHA-256 of the raw bytes; valid after the end was reached. */
  sha256(): string {
    this.digest ??= this.hash.digest("hex");
    return this.digest;
  }

  /** Raw bytes read so far. */
  get bytes(): number {
    return this.counter.bytes;
  }
}
