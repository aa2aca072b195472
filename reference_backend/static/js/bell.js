// The bell in the header: unread count, the latest notifications linking to their batches, mark read,
// and a browser notification when one with `push` arrives while this tab is in the background.

import { request } from "./api.js";
import { NotificationFeed } from "./notifications.js";

const LIST = "/api/v1/notifications";
const REQUEST_TIMEOUT_MS = 5000;
const $ = (id) => document.getElementById(id);

const PUSH_STATE = {
  granted: "Browser notifications are on: you get one when a batch ends while batchqa is in the background.",
  denied: "Browser notifications are blocked for this site; allow them in the browser's site settings.",
  default: "",
};

function batchPath(batchId) {
  return `/batches/${encodeURIComponent(batchId)}`;
}

class Bell {
  constructor() {
    this.root = $("bell-area");
    this.button = $("bell");
    this.count = $("bell-count");
    this.panel = $("bell-panel");
    this.list = $("bell-list");
    this.empty = $("bell-empty");
    this.state = $("bell-state");
    this.markAll = $("mark-all-read");
    this.enablePush = $("enable-push");
    this.pushState = $("push-state");
    this.announcer = $("bell-announcer");
    this.unread = 0;
    this.loaded = false;
    this.newest = 0; // the highest notification id listed so far
    this.considered = new Set(); // ids already weighed for a browser notification, by socket or by poll
    this.refreshing = false;
    this.again = false;
    this.feed = new NotificationFeed({
      onSync: (hello) => this.sync(hello),
      onNotification: (message) => this.arrived(message),
      onMode: (mode) => {
        this.button.dataset.mode = mode;
      },
    });
  }

  start() {
    this.button.addEventListener("click", () => this.toggle());
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        this.toggle(false);
        this.button.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (!this.panel.hidden && !this.root.contains(event.target)) {
        this.toggle(false);
      }
    });
    this.markAll.addEventListener("click", () => this.markAllRead());
    this.enablePush.addEventListener("click", () => this.askForPush());
    this.showPushState();
    if (navigator.permissions) {
      navigator.permissions
        .query({ name: "notifications" })
        .then((status) => status.addEventListener("change", () => this.showPushState()))
        .catch(() => {}); // not every browser can watch this permission; the button still works
    }
    this.refresh();
    this.feed.start();
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    if (open) {
      this.refresh();
      this.panel.focus();
    }
  }

  sync(hello) {
    if (hello && this.loaded && hello.unread === this.unread) {
      return;
    }
    this.refresh();
  }

  arrived(message) {
    this.maybePush(message);
    // The socket also carries push-only notifications (in-app switched off), so the count and the list
    // always come from the server's in-app list rather than from the message itself.
    this.refresh();
  }

  // One load at a time; a request for another while one runs makes one more afterwards, so a burst of
  // notifications costs two loads and the last one always sees the newest state.
  async refresh() {
    if (this.refreshing) {
      this.again = true;
      return;
    }
    this.refreshing = true;
    this.list.setAttribute("aria-busy", "true");
    try {
      do {
        this.again = false;
        await this.load();
      } while (this.again);
    } finally {
      this.refreshing = false;
      this.list.setAttribute("aria-busy", "false");
    }
  }

  async load() {
    let body;
    try {
      body = await request(LIST, { timeoutMs: REQUEST_TIMEOUT_MS, allowAnonymous: true });
    } catch (err) {
      this.state.textContent = `Notifications could not be loaded: ${err.message}`;
      if (!this.loaded) {
        this.button.setAttribute("aria-label", "Notifications (not available)");
      }
      return;
    }
    this.state.textContent = "";
    const notes = body.notifications || [];
    const fresh = this.loaded ? notes.filter((note) => note.id > this.newest).reverse() : [];
    this.newest = Math.max(this.newest, ...notes.map((note) => note.id));
    this.loaded = true;
    this.render(notes, body.unread ?? 0);
    for (const note of fresh) {
      this.maybePush(note); // polling found it (the socket is down), or the socket already weighed it
    }
    if (fresh.length === 1) {
      this.announcer.textContent = `New notification: ${fresh[0].title}`;
    } else if (fresh.length > 1) {
      this.announcer.textContent = `${fresh.length} new notifications`;
    }
  }

  render(notes, unread) {
    this.unread = unread;
    this.button.setAttribute("aria-label", `Notifications, ${unread} unread`);
    this.count.textContent = unread > 99 ? "99+" : String(unread);
    this.count.hidden = unread === 0;
    this.markAll.disabled = unread === 0;
    this.list.replaceChildren(...notes.map((note) => this.item(note)));
    this.empty.hidden = notes.length > 0;
  }

  item(note) {
    const li = document.createElement("li");
    li.className = note.read ? "read" : "unread";
    if (!note.read) {
      const marker = document.createElement("span");
      marker.className = "visually-hidden";
      marker.textContent = "Unread: ";
      li.append(marker);
    }
    const link = document.createElement("a");
    link.href = batchPath(note.batch_id);
    link.textContent = note.title;
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
        return; // a new tab or window: let the browser do it
      }
      event.preventDefault();
      this.openNotification(note, link.href);
    });
    const body = document.createElement("p");
    body.textContent = note.body;
    const time = document.createElement("time");
    time.dateTime = note.created_at;
    time.textContent = new Date(note.created_at).toLocaleString("en-GB");
    li.append(link, body, time);
    return li;
  }

  async openNotification(note, href) {
    if (!note.read) {
      try {
        await request(`${LIST}/${note.id}/read`, { method: "POST", timeoutMs: REQUEST_TIMEOUT_MS, allowAnonymous: true });
      } catch {
        // Still unread on the server: the batch opens all the same, and the bell says so there.
      }
    }
    location.assign(href);
  }

  async markAllRead() {
    this.markAll.disabled = true;
    try {
      await request(`${LIST}/read-all`, { method: "POST", timeoutMs: REQUEST_TIMEOUT_MS, allowAnonymous: true });
    } catch (err) {
      this.state.textContent = `Could not mark the notifications read: ${err.message}`;
    }
    await this.refresh();
  }

  maybePush(note) {
    if (!note.push || this.considered.has(note.id)) {
      return;
    }
    this.considered.add(note.id);
    if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) {
      return;
    }
    const href = note.link || batchPath(note.batch_id);
    let shown;
    try {
      // Tagged by batch: a later notification of the same batch replaces the earlier one on screen.
      shown = new Notification(note.title, { body: note.body, tag: `batch-${note.batch_id}` });
    } catch {
      return; // e.g. browsers that allow notifications only from a service worker
    }
    shown.addEventListener("click", () => {
      window.focus();
      shown.close();
      this.openNotification(note, href);
    });
  }

  showPushState() {
    if (!("Notification" in window)) {
      this.enablePush.hidden = true;
      this.pushState.textContent = "This browser cannot show notifications.";
      return;
    }
    this.enablePush.hidden = Notification.permission !== "default";
    this.pushState.textContent = PUSH_STATE[Notification.permission] ?? "";
  }

  async askForPush() {
    try {
      await Notification.requestPermission();
    } finally {
      this.showPushState();
    }
  }
}

// Started by requireUser() on every signed-in page whose header has the bell.
export function startBell() {
  if (!$("bell")) {
    return null;
  }
  const bell = new Bell();
  bell.start();
  return bell;
}
