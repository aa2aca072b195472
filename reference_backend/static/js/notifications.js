// The user's notifications as they happen: the notifications WebSocket while it works, else a poll
// every 5 s, reconnecting with backoff. What to show is the bell's business (bell.js).

import { LiveSocket } from "./live_socket.js";

export const NOTIFY_POLL_MS = 5000;
// The server sends a heartbeat every second, so this much silence means the socket is dead.
const SOCKET_FIRST_MESSAGE_MS = 4000;
const SOCKET_SILENCE_MS = 5000;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30000;
// Close codes by which the server refuses a socket (docs/contract.md): retrying would not help.
const REFUSALS = [4401, 4403];

export class NotificationFeed extends LiveSocket {
  // onSync(hello | null): the list may have changed unseen (socket opened, or a poll is due);
  // onNotification(message): one the socket delivered; onMode(mode): connecting, live or polling.
  constructor({ onSync, onNotification, onMode }) {
    super({
      onMode,
      pollMs: NOTIFY_POLL_MS,
      firstMessageMs: SOCKET_FIRST_MESSAGE_MS,
      silenceMs: SOCKET_SILENCE_MS,
      reconnectMinMs: RECONNECT_MIN_MS,
      reconnectMaxMs: RECONNECT_MAX_MS,
      refusals: REFUSALS, // refused for good (auth, origin): polling carries on alone
      jitter: true, // so every open tab does not come back at the same instant after a server restart
    });
    this.onSync = onSync;
    this.onNotification = onNotification;
  }

  socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/api/v1/notifications/ws`;
  }

  onMessage(message) {
    if (message.type === "hello") {
      this.onSync(message);
    } else if (message.type === "notification") {
      this.onNotification(message);
    }
  }

  poll() {
    this.onSync(null);
  }
}
