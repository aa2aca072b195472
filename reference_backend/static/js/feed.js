// Live status of one batch: the progress WebSocket when it works, else polling every 2 s, and back to
// the socket as soon as it opens again (docs/contract.md "Progress WebSocket"; US-003 "polling fallback").
// Every socket message covers the events from_seq..seq; a message that starts past the newest seq shown
// + 1 means events were lost on the way, and the feed re-syncs: it reconnects with last_seq so the
// server replays what is missing.

import { ApiError, request, TERMINAL } from "./api.js";
import { LiveSocket } from "./live_socket.js";

export const POLL_MS = 2000;
const POLL_TIMEOUT_MS = 5000;
// The server sends at least a heartbeat every second, so this much silence means the socket is dead.
const SOCKET_FIRST_MESSAGE_MS = 4000;
const SOCKET_SILENCE_MS = 5000;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 5000;
// Close codes by which the server refuses a socket (docs/contract.md): retrying would not help.
const REFUSALS = [4401, 4403, 4404];
// Re-syncs in a row after which a message is shown anyway, so a server that keeps leaving the same gap
// cannot keep the page reconnecting forever.
const MAX_RESYNCS = 3;

export const MODE_TEXT = {
  connecting: "Connecting…",
  live: "Live updates (WebSocket)",
  polling: "Polling every 2 s (live updates unavailable)",
  reconnecting: "Reconnecting…",
  finished: "Up to date: the batch has finished",
};

export class ProgressFeed extends LiveSocket {
  // onStatus(body) gets every status body or socket message; onMode(mode) the connection state;
  // onProblem(text | null) a connection problem to show, or null once it is over.
  constructor(batchId, { onStatus, onMode, onProblem }) {
    super({
      onMode,
      pollMs: POLL_MS,
      firstMessageMs: SOCKET_FIRST_MESSAGE_MS,
      silenceMs: SOCKET_SILENCE_MS,
      reconnectMinMs: RECONNECT_MIN_MS,
      reconnectMaxMs: RECONNECT_MAX_MS,
      // Refused for good (auth, origin, batch): polling carries on, and says why if it must.
      refusals: REFUSALS,
      steadyCadence: true,
    });
    this.batchId = batchId;
    this.onStatus = onStatus;
    this.onProblem = onProblem;
    this.seq = -1;
    this.resyncs = 0;
  }

  start(seq) {
    this.seq = typeof seq === "number" ? seq : this.seq;
    this.reconnectDelay = RECONNECT_MIN_MS;
    super.start();
  }

  // Every status body goes through here (poll, socket, an action's answer), so a stale one never wins:
  // the status endpoint and the socket share one sequence number.
  deliver(status) {
    if (typeof status.seq === "number") {
      if (status.seq < this.seq) {
        return;
      }
      this.seq = status.seq;
    }
    this.onStatus(status);
    if (TERMINAL.has(status.status) && !this.stopped) {
      this.stop();
      this.onProblem(null);
      this.setMode("finished");
    }
  }

  socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = this.seq >= 0 ? `?last_seq=${this.seq}` : "";
    return `${scheme}//${location.host}/api/v1/batch/ws/${encodeURIComponent(this.batchId)}${query}`;
  }

  onMessage(message) {
    if (this.leavesGap(message) && this.resyncs < MAX_RESYNCS) {
      this.resyncs += 1;
      this.reopen(); // socketUrl() asks for everything after this.seq
      return;
    }
    this.resyncs = 0;
    this.deliver(message);
  }

  // True when the message does not join what was shown: a snapshot starts over (it covers the whole
  // history), an event message covers from_seq..seq, a heartbeat covers nothing new.
  leavesGap(message) {
    if (this.seq < 0 || typeof message.seq !== "number" || message.type === "snapshot") {
      return false;
    }
    if (message.type === "heartbeat") {
      return message.seq > this.seq;
    }
    const from = typeof message.from_seq === "number" ? message.from_seq : message.seq;
    return from > this.seq + 1;
  }

  wentLive() {
    this.onProblem(null);
  }

  modeAfterLoss(wasLive) {
    if (wasLive) {
      return "reconnecting";
    }
    return this.mode === "reconnecting" ? null : "polling";
  }

  async poll() {
    try {
      const status = await request(`/api/v1/batch/status/${encodeURIComponent(this.batchId)}`, {
        timeoutMs: POLL_TIMEOUT_MS,
      });
      if (!this.polling) {
        return; // the socket took over while this answer was on its way
      }
      this.onProblem(null);
      if (this.mode === "reconnecting" || this.mode === "connecting") {
        this.setMode("polling");
      }
      this.deliver(status);
    } catch (err) {
      if (!this.polling) {
        return;
      }
      if (err instanceof ApiError && err.status === 404) {
        this.onProblem(err.message);
        this.stop();
        return;
      }
      this.setMode("reconnecting");
      this.onProblem(
        `Lost contact with the server: ${err.message} Retrying every 2 s; the batch keeps running on the server.`,
      );
    }
  }
}
