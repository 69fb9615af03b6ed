// Power controls in the toolbar: the ATX buttons (Power menu), the power and HDD LEDs, and the
// Wake-on-LAN button. Destructive actions (off, forced off, reset) ask for confirmation first:
// one stray click must not shut down a server. LEDs follow the WebSocket "power" events.

import { api } from "./api.js";
import { addMenuItem, addMenuSeparator } from "./menu.js";

const $ = (id) => document.getElementById(id);

const ACTIONS = [
  { action: "on", label: "Power on", confirm: null },
  {
    action: "off",
    label: "Power off…",
    confirm: "Press the power button to shut the target down (the OS decides how)?",
  },
  {
    action: "off_hard",
    label: "Force off…",
    confirm: "Hold the power button to force the target off? Unsaved work is lost.",
  },
  { action: "reset", label: "Reset…", confirm: "Press reset? The target restarts at once." },
];

export class PowerControls {
  /** @param {(text: string) => void} toast */
  constructor(toast) {
    this.toast = toast;
    this.menu = $("atx-menu");
    this.items = new Map();
    for (const { action, label, confirm } of ACTIONS) {
      if (action === "off_hard") addMenuSeparator(this.menu);
      const item = addMenuItem(this.menu, label, () => this.act(action, confirm));
      item.dataset.action = action;
      this.items.set(action, item);
    }
    this.wol = $("wol-btn");
    this.wol.addEventListener("click", () => this.wake());
  }

  async start() {
    await this.refreshWol();
    try {
      this.render(await api("GET", "/api/power"));
    } catch {
      // no power facet on this target: the menu stays hidden (ui.render decides)
    }
  }

  /** The Wake button wakes the machine on the console now: the active switch port's MAC (or
   * wol.mac without a switch). Shown only when that machine has one. */
  async refreshWol() {
    try {
      const wol = await api("GET", "/api/wol");
      this.wol.hidden = !wol.mac;
      this.wol.dataset.switchPort = wol.switch_port ?? "";
      if (wol.mac) {
        const where = wol.switch_port ? ` (switch port ${wol.switch_port})` : "";
        this.wol.title = `Send a Wake-on-LAN magic packet to ${wol.mac}${where}`;
      }
    } catch {
      this.wol.hidden = true;
    }
  }

  /** A switch event or state block: a new active port (or a new MAC for it) changes whom
   * the Wake button wakes. */
  followSwitch(status) {
    if (!status) return;
    const active = (status.ports || []).find((p) => p.port === status.active);
    const key = `${status.active}|${active ? active.wol_mac : ""}`;
    if (key === this.switchKey) return;
    this.switchKey = key;
    this.refreshWol();
  }

  async act(action, question) {
    if (question && !window.confirm(question)) return;
    try {
      this.render(await api("POST", "/api/power", { action }));
    } catch (err) {
      this.toast(`Power: ${err.message}`);
    }
  }

  async wake() {
    try {
      const sent = await api("POST", "/api/wol", {});
      this.toast(`Wake-on-LAN packet sent to ${sent.mac}`);
    } catch (err) {
      this.toast(`Wake-on-LAN: ${err.message}`);
    }
  }

  /** A power status ({state, leds: {power, hdd}, busy, action}) from the API or a WS event. */
  render(status) {
    for (const name of ["power", "hdd"]) {
      const led = $(`atx-led-${name}`);
      const lit = status.leds ? status.leds[name] : null;
      led.hidden = lit === null || lit === undefined;
      led.classList.toggle("on", Boolean(lit));
      led.setAttribute("aria-label", `${led.title} ${lit ? "on" : "off"}`);
    }
    const on = status.state === "on";
    const off = status.state === "off";
    // Behind a KVM switch: a port without ATX wiring has nothing to press (reason says why).
    const unavailable = status.available === false;
    // The same rules the server applies, so the menu offers only what it would accept.
    const allowed = { on: !on, off: !off, off_hard: !off, reset: !off };
    for (const [action, item] of this.items) {
      item.disabled = unavailable || status.busy || !allowed[action];
    }
    const button = $("atx-btn");
    if (status.busy) button.textContent = `Power: ${status.action}… ▾`;
    else if (unavailable) button.textContent = "Power: unavailable ▾";
    else button.textContent = `Power: ${status.state} ▾`;
    button.title = unavailable ? status.reason || "no power control" : "";
    button.dataset.state = unavailable ? "unavailable" : status.state;
  }
}
