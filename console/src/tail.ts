//! The live tail over the WebSocket API (docs/TAIL.md): subscribe with the
//! filter, receive entries in ascending seq, reconnect on close with `after_seq` = the highest
//! seq held (the server resends everything after it; seqs already held are dropped by the
//! caller), ping every 5 minutes against the 10-minute idle limit. Browsers cannot set headers on
//! a WebSocket, so the credential goes in the query string.

import type { Entry } from "./types";
import type { Filter } from "./filters";

export type TailState = "off" | "connecting" | "live" | "paused" | "reconnecting" | "failed";

export interface TailOptions {
  url: string;
  token: string;
  filter: Filter;
  /** The highest seq the caller holds (null: only what is committed from now on). */
  highestSeq: () => number | null;
  onEntries: (entries: Entry[]) => void;
  /** A `ref` frame: an entry too large for a frame, to be fetched by id. */
  onRef: (id: string, seq: number) => void;
  onState: (state: TailState, detail?: string) => void;
}

const PING_MS = 5 * 60 * 1000;

export class LiveTail {
  private socket: WebSocket | null = null;
  private stopped = false;
  private paused = false;
  private held: Entry[] = [];
  private attempts = 0;
  private ping: ReturnType<typeof setInterval> | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: TailOptions) {}

  start(): void {
    this.stopped = false;
    this.connect("connecting");
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    this.socket?.close(1000, "stopped");
    this.socket = null;
    this.held = [];
    this.options.onState("off");
  }

  /** Keeps the connection and holds what arrives until `resume`. */
  pause(): void {
    this.paused = true;
    this.options.onState("paused");
  }

  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    if (held.length) this.options.onEntries(held);
    this.options.onState(this.socket?.readyState === WebSocket.OPEN ? "live" : "reconnecting");
  }

  private clearTimers(): void {
    if (this.ping) clearInterval(this.ping);
    if (this.retry) clearTimeout(this.retry);
    this.ping = this.retry = null;
  }

  private connect(state: TailState): void {
    this.options.onState(state);
    const url = new URL(this.options.url, location.href);
    url.searchParams.set("token", this.options.token);
    let socket: WebSocket;
    try {
      socket = new WebSocket(url.toString());
    } catch (e) {
      this.options.onState("failed", (e as Error).message);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      const filter: Record<string, string> = {};
      for (const [k, v] of Object.entries(this.options.filter)) if (k !== "q" && v) filter[k] = v;
      socket.send(JSON.stringify({ action: "subscribe", filter, after_seq: this.options.highestSeq() }));
      this.ping = setInterval(() => socket.send(JSON.stringify({ action: "ping" })), PING_MS);
    };
    socket.onmessage = (message) => {
      let frame: { type?: string; entries?: Entry[]; seq?: number; id?: string; error?: { message?: string } };
      try {
        frame = JSON.parse(String(message.data));
      } catch {
        return;
      }
      if (frame.type === "subscribed") {
        this.attempts = 0;
        this.options.onState(this.paused ? "paused" : "live");
      } else if (frame.type === "events" && frame.entries) {
        if (this.paused) this.held.push(...frame.entries);
        else this.options.onEntries(frame.entries);
      } else if (frame.type === "ref" && frame.id && typeof frame.seq === "number") {
        this.options.onRef(frame.id, frame.seq);
      } else if (frame.type === "error") {
        this.options.onState("failed", frame.error?.message ?? "the tail refused the subscription");
        this.stopped = true;
        socket.close();
      }
    };
    socket.onclose = () => {
      this.clearTimers();
      if (this.stopped) return;
      // Back off 1, 2, 4 ... 30 s; the server resends everything after the highest seq held.
      const delay = Math.min(30_000, 1000 * 2 ** this.attempts++);
      this.options.onState("reconnecting", `reconnecting in ${Math.round(delay / 1000)} s`);
      this.retry = setTimeout(() => this.connect("reconnecting"), delay);
    };
  }
}
