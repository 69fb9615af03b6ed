// The console's WebSocket to /api/ws: sends input, receives state and events, measures RTT,
// and reconnects by itself (with back-off) after network loss or a service restart.
//
// Events (EventTarget, detail = payload): "open", "close", "state", "type_progress",
// "error-event", "rtt" (detail = milliseconds).

const PING_EVERY_MS = 2000;
// No message at all for this long (pongs included) means the link is dead even if the
// browser has not noticed yet (e.g. a cable pulled): drop it and reconnect.
const DEAD_AFTER_MS = 7000;
const BACKOFF_MS = [250, 500, 1000, 2000, 3000, 5000];

export class KvmSocket extends EventTarget {
  constructor(path = "/api/ws") {
    super();
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${window.location.host}${path}`;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.lastHeard = 0;
    this.rtt = null;
    this.timers = { ping: null, retry: null };
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  /** Close for good (logout, page leaving). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.ping);
    if (this.ws) this.ws.close(1000, "bye");
  }

  /** Send one message; returns false when not connected (input is dropped, never queued:
   *  replaying stale key presses after a reconnect would be worse than losing them). */
  send(message) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  connect() {
    clearTimeout(this.timers.retry);
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.lastHeard = performance.now();
      this.dispatchEvent(new CustomEvent("open"));
      this.ping();
      clearInterval(this.timers.ping);
      this.timers.ping = setInterval(() => this.ping(), PING_EVERY_MS);
    });
    ws.addEventListener("message", (event) => this.onMessage(event));
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      clearInterval(this.timers.ping);
      this.ws = null;
      this.rtt = null;
      this.dispatchEvent(new CustomEvent("close"));
      if (event.code === 4401 && !this.stopped) {
        // The server ended the session this socket was opened with (logout, password change,
        // expiry). Log in again, unless the browser holds a newer valid cookie (a login in
        // another tab replaces the session): then reconnect with it.
        this.reconnectIfSignedIn();
        return;
      }
      if (!this.stopped) this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    // From the second failure on, check whether the session itself is gone (a refused upgrade
    // looks the same as a network error from here; a service restart forgets sessions).
    if (this.attempt >= 2) this.checkSession();
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  async reconnectIfSignedIn() {
    try {
      const response = await fetch("/api/auth/me", { credentials: "same-origin" });
      if (response.status === 401) {
        this.stopped = true;
        window.location.assign("/login");
        return;
      }
    } catch {
      // Appliance unreachable: the normal back-off applies.
    }
    if (!this.stopped) this.scheduleReconnect();
  }

  async checkSession() {
    try {
      const response = await fetch("/api/auth/me", { credentials: "same-origin" });
      if (response.status === 401) window.location.assign("/login");
    } catch {
      // Appliance unreachable: keep retrying.
    }
  }

  ping() {
    if (!this.isOpen) return;
    if (performance.now() - this.lastHeard > DEAD_AFTER_MS) {
      this.ws.close(4000, "no answer");
      // Browsers may take a while to fire "close" on a dead TCP link; act now.
      const dead = this.ws;
      this.ws = null;
      clearInterval(this.timers.ping);
      this.dispatchEvent(new CustomEvent("close"));
      if (!this.stopped) this.scheduleReconnect();
      return;
    }
    this.send({ type: "ping", t: performance.now() });
  }

  onMessage(event) {
    this.lastHeard = performance.now();
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (msg.type) {
      case "pong":
        if (typeof msg.t === "number") {
          this.rtt = performance.now() - msg.t;
          this.dispatchEvent(new CustomEvent("rtt", { detail: this.rtt }));
        }
        break;
      case "state":
        this.dispatchEvent(new CustomEvent("state", { detail: msg }));
        break;
      case "type_progress":
        this.dispatchEvent(new CustomEvent("type_progress", { detail: msg }));
        break;
      case "error":
        this.dispatchEvent(new CustomEvent("error-event", { detail: msg }));
        break;
      default:
        this.dispatchEvent(new CustomEvent(msg.type || "message", { detail: msg }));
    }
  }
}
