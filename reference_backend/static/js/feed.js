// Live status of one batch: the progress WebSocket when it works, else polling every 2 s, and back to
// the socket as soon as it opens again (docs/contract.md "Progress WebSocket"; US-003 "polling fallback").

import { ApiError, request, TERMINAL } from "./api.js";

export const POLL_MS = 2000;
const POLL_TIMEOUT_MS = 5000;
// The server sends at least a heartbeat every second, so this much silence means the socket is dead.
const SOCKET_FIRST_MESSAGE_MS = 4000;
const SOCKET_SILENCE_MS = 5000;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 5000;
// Close codes by which the server refuses a socket (docs/contract.md): retrying would not help.
const REFUSALS = new Set([4401, 4403, 4404]);

export const MODE_TEXT = {
  connecting: "Connecting…",
  live: "Live updates (WebSocket)",
  polling: "Polling every 2 s (live updates unavailable)",
  reconnecting: "Reconnecting…",
  finished: "Up to date: the batch has finished",
};

export class ProgressFeed {
  // onStatus(body) gets every status body or socket message; onMode(mode) the connection state;
  // onProblem(text | null) a connection problem to show, or null once it is over.
  constructor(batchId, { onStatus, onMode, onProblem }) {
    this.batchId = batchId;
    this.onStatus = onStatus;
    this.onMode = onMode;
    this.onProblem = onProblem;
    this.seq = -1;
    this.mode = null;
    this.stopped = true;
    this.ws = null;
    this.live = false;
    this.polling = false;
    this.pollTimer = null;
    this.watchdog = null;
    this.reconnectTimer = null;
    this.reconnectDelay = RECONNECT_MIN_MS;
  }

  start(seq) {
    this.stopped = false;
    this.seq = typeof seq === "number" ? seq : this.seq;
    this.reconnectDelay = RECONNECT_MIN_MS;
    this.setMode("connecting");
    this.openSocket();
  }

  stop() {
    this.stopped = true;
    this.stopPolling();
    clearTimeout(this.watchdog);
    clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    this.ws = null;
    this.live = false;
    if (ws) {
      ws.close(1000, "done");
    }
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

  setMode(mode) {
    if (mode !== this.mode) {
      this.mode = mode;
      this.onMode(mode);
    }
  }

  openSocket() {
    if (this.stopped || this.ws) {
      return;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = this.seq >= 0 ? `?last_seq=${this.seq}` : "";
    const url = `${scheme}//${location.host}/api/v1/batch/ws/${encodeURIComponent(this.batchId)}${query}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.socketLost();
      return;
    }
    this.ws = ws;
    this.live = false;
    this.armWatchdog(SOCKET_FIRST_MESSAGE_MS);
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) {
        return;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      // Live only once the server speaks: an accepted handshake alone proves nothing.
      if (!this.live) {
        this.live = true;
        this.reconnectDelay = RECONNECT_MIN_MS;
        this.stopPolling();
        this.onProblem(null);
        this.setMode("live");
      }
      this.armWatchdog(SOCKET_SILENCE_MS);
      this.deliver(message);
    });
    ws.addEventListener("close", (event) => {
      if (ws === this.ws) {
        this.socketLost(event.code);
      }
    });
  }

  armWatchdog(ms) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      const ws = this.ws;
      if (ws) {
        this.socketLost();
        ws.close(4000, "silent");
      }
    }, ms);
  }

  socketLost(code) {
    const wasLive = this.live;
    this.ws = null;
    this.live = false;
    clearTimeout(this.watchdog);
    if (this.stopped) {
      return;
    }
    if (wasLive) {
      this.setMode("reconnecting");
    } else if (this.mode !== "reconnecting") {
      this.setMode("polling");
    }
    this.startPolling();
    clearTimeout(this.reconnectTimer);
    if (REFUSALS.has(code)) {
      return; // the server said no for good (auth, origin, batch): polling carries on, and says why if it must
    }
    this.reconnectTimer = setTimeout(() => this.openSocket(), this.reconnectDelay);
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
  }

  startPolling() {
    if (this.polling) {
      return;
    }
    this.polling = true;
    this.pollBase = performance.now();
    this.pollTick = 0;
    this.poll();
  }

  stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
  }

  async poll() {
    if (!this.polling || this.stopped) {
      return;
    }
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
    if (this.polling && !this.stopped) {
      this.scheduleNextPoll();
    }
  }

  scheduleNextPoll() {
    // Ticks at fixed times from the start, so the time each answer takes does not stretch the cadence.
    const now = performance.now();
    this.pollTick += 1;
    let due = this.pollBase + this.pollTick * POLL_MS;
    if (due < now - POLL_MS) {
      this.pollBase = now; // far behind (a long outage): start a fresh cadence rather than burst
      this.pollTick = 0;
      due = now;
    }
    this.pollTimer = setTimeout(() => this.poll(), Math.max(0, due - now));
  }
}
