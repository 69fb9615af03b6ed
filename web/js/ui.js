// What the user sees besides the picture: toolbar actions, HID/LED status, video status
// message, the reconnecting banner and the fps/latency overlay.

import { api, goToLogin } from "./api.js";
import { addMenuItem, addMenuSeparator, setupMenu } from "./menu.js";

// Special keys and combos, as chords for POST /api/hid/keys.
const SPECIAL_KEYS = [
  ["Ctrl+Alt+Del", "ctrl+alt+delete"],
  ["Ctrl+Alt+Backspace", "ctrl+alt+backspace"],
  null,
  ...Array.from({ length: 12 }, (_, i) => [`Ctrl+Alt+F${i + 1}`, `ctrl+alt+f${i + 1}`]),
  null,
  ["Alt+SysRq", "alt+sysrq"],
  ["PrintScreen", "printscreen"],
  ["Win", "win"],
  ["Win+L (lock)", "win+l"],
  ["Alt+Tab", "alt+tab"],
  ["Alt+F4", "alt+f4"],
  ["Ctrl+Esc", "ctrl+esc"],
  ["Esc", "esc"],
  ["Pause/Break", "pause"],
  ["F11", "f11"],
  ["F12", "f12"],
];

const VIDEO_MESSAGES = {
  no_signal: ["No signal", "The target sends no picture (sleeping, or the cable is out)."],
  target_off: ["Target off", "The target machine is powered off."],
  no_device: ["No device", "No video capture device is connected to the appliance."],
  starting: ["Starting…", "The video capture is starting."],
};

export class Ui {
  constructor() {
    this.$ = (id) => document.getElementById(id);
    this.state = null;
    this.videoStatus = "starting";
    this.transportStatus = "connecting";
    this.socketOpen = false;
    this.everConnected = false;
    this.rtt = null;
    this.transport = null;
    /** Called before logging out (set by main.js: stops the input socket and the video). */
    this.beforeLogout = null;
  }

  /** Build the special-keys menu and wire the simple toolbar buttons. */
  init() {
    const menu = this.$("keys-menu");
    for (const entry of SPECIAL_KEYS) {
      if (!entry) {
        addMenuSeparator(menu);
        continue;
      }
      const [label, chord] = entry;
      addMenuItem(menu, label, () => this.sendKeys(chord), `Send ${label} to the target`);
    }
    setupMenu(this.$("keys-btn"), menu);
    setupMenu(this.$("switch-btn"), this.$("switch-menu"));
    setupMenu(this.$("atx-btn"), this.$("atx-menu"));

    this.$("snapshot-btn").addEventListener("click", () => this.snapshot());
    this.$("logout-btn").addEventListener("click", () => this.logout());
    this.$("fullscreen-btn").addEventListener("click", () => this.toggleFullscreen());
    document.addEventListener("fullscreenchange", () => this.fullscreenChanged());

    // Narrow screens: the toolbar collapses behind a menu button.
    const toggle = this.$("tb-toggle");
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      this.$("toolbar").classList.toggle("open", open);
    });
    setInterval(() => this.renderStats(), 1000);
  }

  async sendKeys(chord) {
    try {
      await api("POST", "/api/hid/keys", { keys: chord });
    } catch (err) {
      this.toast(`Could not send ${chord}: ${err.message}`);
    }
  }

  async snapshot() {
    try {
      const response = await fetch("/api/snapshot", { credentials: "same-origin" });
      if (response.status === 401) return goToLogin();
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const blob = await response.blob();
      const ext = (blob.type.split("/")[1] || "jpg").replace("jpeg", "jpg");
      const stamp = new Date().toISOString().replace(/[:]/g, "-").replace(/\..*/, "");
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `ipkvm-${stamp}.${ext}`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (err) {
      this.toast(`Snapshot failed: ${err.message}`);
    }
  }

  async logout() {
    // Close our own connections first: the server ends them when the session goes (WebSocket
    // 4401), and a console that then asked whether it is still signed in would log a 401.
    this.beforeLogout?.();
    try {
      await api("POST", "/api/auth/logout");
    } catch {
      // Signed out or unreachable: the login page is the right place either way.
    }
    goToLogin();
  }

  toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen({ navigationUI: "hide" }).catch((err) => {
      this.toast(`Fullscreen refused: ${err.message}`);
    });
  }

  // In fullscreen, the Keyboard Lock API lets Esc, Alt+Tab, Win… reach the target instead of
  // the local OS/browser (hold Esc to leave fullscreen).
  fullscreenChanged() {
    const full = Boolean(document.fullscreenElement);
    document.body.classList.toggle("fullscreen", full);
    this.$("fullscreen-btn").textContent = full ? "Exit fullscreen" : "Fullscreen";
    const kb = navigator.keyboard;
    if (full && kb && kb.lock) kb.lock().catch(() => {});
    else if (!full && kb && kb.unlock) kb.unlock();
    if (full) this.$("capture").focus();
  }

  /** Apply a state document (from the WebSocket or GET /api/state). */
  render(state) {
    this.state = state;
    const hid = state.hid || {};
    const pill = this.$("hid-status");
    // online is null until the first report was written: the link state is not known yet.
    const online = hid.online === true ? "online" : hid.online === false ? "offline" : "idle";
    // The keyboard decides "online"; a mouse that alone is offline (a wrong device path, an
    // endpoint the host stopped polling) is shown too, or the pointer would just seem dead.
    const mouse = (hid.devices || {}).mouse;
    const mouseOff = online === "online" && mouse && mouse.online === false;
    pill.textContent = mouseOff ? "HID online · mouse offline" : `HID ${online}`;
    pill.dataset.kind = mouseOff ? "bad" : { online: "ok", offline: "bad", idle: "" }[online];
    pill.title = hid.error
      ? `HID: ${hid.error}`
      : online === "idle"
        ? "Nothing sent to the target yet: the link state shows after the first key or move"
        : `Keyboard/mouse output: ${hid.output || "?"}`;
    const leds = hid.leds || {};
    for (const name of ["num", "caps", "scroll"]) {
      const led = this.$(`led-${name}`);
      led.classList.toggle("on", Boolean(leds[name]));
      led.setAttribute("aria-label", `${led.title} ${leds[name] ? "on" : "off"}`);
    }
    const mode = hid.mouse_mode === "relative" ? "relative" : "absolute";
    this.$("mouse-btn").textContent = `Mouse: ${mode}`;
    this.$("mouse-btn").setAttribute("aria-label", `Mouse mode: ${mode}. Press to switch.`);
    this.videoStatus = (state.video && state.video.status) || "ok";
    // Optional devices: shown only when the appliance reports them.
    this.$("switch-wrap").hidden = !state.switch;
    this.$("atx-wrap").hidden = !(state.target && state.target.facets && state.target.facets.power);
    this.$("media-btn").hidden = !(state.media && state.media.available);
    this.renderVideoMessage();
    this.renderStats();
  }

  setSocketOpen(open) {
    this.socketOpen = open;
    // For automation (and the browser tests): input typed before this is "open" is dropped.
    document.body.dataset.socket = open ? "open" : "closed";
    if (open) this.everConnected = true;
    this.renderBanner();
  }

  setTransport(transport) {
    this.transport = transport;
    this.$("transport-name").textContent = transport ? transport.constructor.label : "—";
  }

  setTransportStatus(status) {
    this.transportStatus = status;
    this.renderBanner();
    this.renderVideoMessage();
  }

  renderBanner() {
    const banner = this.$("banner");
    let text = "";
    if (!this.socketOpen) text = this.everConnected ? "Connection lost — reconnecting…" : "Connecting…";
    else if (this.transportStatus === "error" || this.transportStatus === "stalled") {
      text = "Video stream interrupted — reconnecting…";
    }
    banner.textContent = text;
    banner.hidden = text === "";
    document.body.classList.toggle("reconnecting", !this.socketOpen && this.everConnected);
  }

  renderVideoMessage() {
    const box = this.$("video-message");
    const known = VIDEO_MESSAGES[this.videoStatus];
    if (!known || (this.videoStatus === "starting" && this.transportStatus === "playing")) {
      box.hidden = true;
      return;
    }
    const [title, detail] = known;
    const extra = this.state && this.state.video && this.state.video.message;
    box.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = title;
    const p = document.createElement("span");
    p.textContent = extra || detail;
    box.append(strong, p);
    box.dataset.status = this.videoStatus;
    box.hidden = false;
  }

  renderStats() {
    const box = this.$("stats");
    if (box.hidden) return;
    const parts = [];
    if (this.transport) parts.push(this.transport.constructor.label);
    const fps = this.transport ? this.transport.fps : null;
    if (fps !== null && fps !== undefined) parts.push(`${fps.toFixed(1)} fps`);
    else if (this.state && this.state.video && this.state.video.fps) parts.push(`${this.state.video.fps.toFixed(1)} fps`);
    const kbps = this.transport ? this.transport.kbps : null;
    if (kbps) parts.push(kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${Math.round(kbps)} kbit/s`);
    const latency = this.transport ? this.transport.latency : null;
    if (latency !== null && latency !== undefined && latency >= 0) {
      parts.push(`latency ${Math.round(latency)} ms`);
    }
    parts.push(this.rtt === null ? "RTT —" : `RTT ${Math.round(this.rtt)} ms`);
    const size = this.transport && this.transport.pictureSize();
    if (size) parts.push(`${size.width}×${size.height}`);
    if (this.state && this.state.clients > 1) parts.push(`${this.state.clients} viewers`);
    box.textContent = parts.join(" · ");
  }

  setRtt(ms) {
    this.rtt = ms;
  }

  showStats(on) {
    this.$("stats").hidden = !on;
    if (on) this.renderStats();
  }

  /** A short message at the bottom of the screen. */
  toast(text) {
    let box = document.getElementById("toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "toast";
      box.className = "toast";
      box.setAttribute("role", "alert");
      document.body.append(box);
    }
    box.textContent = text;
    box.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (box.hidden = true), 5000);
  }
}
