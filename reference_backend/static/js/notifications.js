// The user's notifications as they happen (issue 7): the notifications WebSocket while it works, else a poll
// every 5 s, reconnecting with backoff. What to show is the bell's business (bell.js).

export const NOTIFY_POLL_MS = 5000;
// The server sends a heartbeat every second, so this much silence means the socket is dead.
const SOCKET_FIRST_MESSAGE_MS = 4000;
const SOCKET_SILENCE_MS = 5000;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30000;
// Close codes by which the server refuses a socket (docs/contract.md): retrying would not help.
const REFUSALS = new Set([4401, 4403]);

export class NotificationFeed {
  // onSync(hello | null): the list may have changed unseen (socket opened, or a poll is due);
  // onNotification(message): one the socket delivered; onMode(mode): connecting, live or polling.
  constructor({ onSync, onNotification, onMode }) {
    this.onSync = onSync;
    this.onNotification = onNotification;
    this.onMode = onMode;
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
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/api/v1/notifications/ws`);
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
        this.setMode("live");
      }
      this.armWatchdog(SOCKET_SILENCE_MS);
      if (message.type === "hello") {
        this.onSync(message);
      } else if (message.type === "notification") {
        this.onNotification(message);
      }
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
    this.ws = null;
    this.live = false;
    clearTimeout(this.watchdog);
    if (this.stopped) {
      return;
    }
    this.setMode("polling");
    this.startPolling();
    clearTimeout(this.reconnectTimer);
    if (REFUSALS.has(code)) {
      return; // refused for good (auth, origin): polling carries on alone
    }
    // Jittered, so every open tab does not come back at the same instant after a server restart.
    const delay = this.reconnectDelay * (0.75 + Math.random() / 2);
    this.reconnectTimer = setTimeout(() => this.openSocket(), delay);
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
  }

  startPolling() {
    if (this.polling) {
      return;
    }
    this.polling = true;
    this.poll();
  }

  stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
  }

  poll() {
    if (!this.polling || this.stopped) {
      return;
    }
    this.onSync(null);
    this.pollTimer = setTimeout(() => this.poll(), NOTIFY_POLL_MS);
  }
}
