// The mechanism both live feeds share (feed.js, notifications.js): a WebSocket while it works, else polling,
// reconnecting with backoff, and a watchdog that gives up on a silent socket. A subclass says where to connect
// (socketUrl), what a message means (onMessage) and what one poll does (poll); the modes it reports are
// connecting, live and polling, plus whatever its hooks add.

export class LiveSocket {
  // onMode(mode) gets every change of connection state. The server sends a heartbeat every second, so
  // firstMessageMs / silenceMs of silence mean the socket is dead. refusals: close codes by which the server
  // refuses a socket for good (retrying would not help). jitter: spread each reconnect delay over ±25 %.
  // steadyCadence: polls tick at fixed times from the start instead of pollMs after each poll ends.
  constructor({
    onMode,
    pollMs,
    firstMessageMs = 4000,
    silenceMs = 5000,
    reconnectMinMs = 1000,
    reconnectMaxMs,
    refusals = [],
    jitter = false,
    steadyCadence = false,
  }) {
    this.onMode = onMode;
    this.pollMs = pollMs;
    this.firstMessageMs = firstMessageMs;
    this.silenceMs = silenceMs;
    this.reconnectMinMs = reconnectMinMs;
    this.reconnectMaxMs = reconnectMaxMs;
    this.refusals = new Set(refusals);
    this.jitter = jitter;
    this.steadyCadence = steadyCadence;
    this.mode = null;
    this.stopped = true;
    this.ws = null;
    this.live = false;
    this.polling = false;
    this.pollTimer = null;
    this.watchdog = null;
    this.reconnectTimer = null;
    this.reconnectDelay = reconnectMinMs;
  }

  // Hooks for a subclass.
  socketUrl() {
    throw new Error("LiveSocket.socketUrl() is not implemented");
  }

  onMessage(_message) {}

  // One poll; may return a promise, in which case the next poll waits for it.
  poll() {}

  // Called once a socket turns live, just before the mode becomes "live".
  wentLive() {}

  // The mode to show once the socket is lost (null: leave it as it is).
  modeAfterLoss(_wasLive) {
    return "polling";
  }

  start() {
    this.stopped = false;
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
    let ws;
    try {
      ws = new WebSocket(this.socketUrl());
    } catch {
      this.socketLost();
      return;
    }
    this.ws = ws;
    this.live = false;
    this.armWatchdog(this.firstMessageMs);
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
        this.reconnectDelay = this.reconnectMinMs;
        this.stopPolling();
        this.wentLive();
        this.setMode("live");
      }
      this.armWatchdog(this.silenceMs);
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (ws === this.ws) {
        this.socketLost(event.code);
      }
    });
  }

  // Drop the socket and open a fresh one at once, without backoff (e.g. to re-sync after a gap); the mode
  // stays as it is, since the connection is replaced, not lost.
  reopen() {
    const ws = this.ws;
    this.ws = null;
    this.live = false;
    clearTimeout(this.watchdog);
    if (ws) {
      ws.close(1000, "re-sync");
    }
    this.openSocket();
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
    const mode = this.modeAfterLoss(wasLive);
    if (mode) {
      this.setMode(mode);
    }
    this.startPolling();
    clearTimeout(this.reconnectTimer);
    if (this.refusals.has(code)) {
      return; // the server said no for good: polling carries on alone
    }
    // Jittered (if asked), so every open tab does not come back at the same instant after a server restart.
    const delay = this.jitter ? this.reconnectDelay * (0.75 + Math.random() / 2) : this.reconnectDelay;
    this.reconnectTimer = setTimeout(() => this.openSocket(), delay);
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.reconnectMaxMs);
  }

  startPolling() {
    if (this.polling) {
      return;
    }
    this.polling = true;
    this.pollBase = performance.now();
    this.pollTick = 0;
    this.runPoll();
  }

  stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
  }

  async runPoll() {
    if (!this.polling || this.stopped) {
      return;
    }
    const pending = this.poll();
    if (pending instanceof Promise) {
      await pending;
    }
    if (this.polling && !this.stopped) {
      this.scheduleNextPoll();
    }
  }

  scheduleNextPoll() {
    if (!this.steadyCadence) {
      this.pollTimer = setTimeout(() => this.runPoll(), this.pollMs);
      return;
    }
    // Ticks at fixed times from the start, so the time each answer takes does not stretch the cadence.
    const now = performance.now();
    this.pollTick += 1;
    let due = this.pollBase + this.pollTick * this.pollMs;
    if (due < now - this.pollMs) {
      this.pollBase = now; // far behind (a long outage): start a fresh cadence rather than burst
      this.pollTick = 0;
      due = now;
    }
    this.pollTimer = setTimeout(() => this.runPoll(), Math.max(0, due - now));
  }
}
