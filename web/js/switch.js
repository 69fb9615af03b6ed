// The KVM switch's port selector: the toolbar's "Switch" menu lists the ports by name, marks the
// active one, and shows the switch's state on the button (offline in red, with the reason in its
// tooltip). Choosing a port asks POST /api/switch/select, which answers once the switch has
// confirmed it; the new state also arrives as a "switch" WebSocket event, so every open console
// follows a change made elsewhere (another viewer, the CLI, a script, the front-panel button).

import { api } from "./api.js";
import { addMenuItem } from "./menu.js";

export class SwitchMenu {
  /**
   * @param {HTMLButtonElement} button  the toolbar button (#switch-btn)
   * @param {HTMLElement} menu  its role="menu" (#switch-menu)
   * @param {(text: string) => void} toast  where errors are shown
   */
  constructor(button, menu, toast) {
    this.button = button;
    this.menu = menu;
    this.toast = toast;
    this.state = null;
    this.pending = null;
    this.shown = ""; // what the menu was last built from: rebuild only on a change
  }

  /** Apply the switch block of /api/state or a "switch" event (null: no switch). */
  render(state) {
    if (!state) return;
    this.state = state;
    const active = state.ports.find((p) => p.port === state.active);
    const name = active ? active.name : "?";
    let label = `Switch: ${name}`;
    let kind = "";
    if (state.state === "offline") {
      label = "Switch offline";
      kind = "bad";
    } else if (state.state === "switching" || this.pending !== null) {
      const to = state.ports.find((p) => p.port === (state.selecting || this.pending));
      label = `Switching to ${to ? to.name : "…"}`;
    }
    this.button.textContent = `${label} ▾`;
    this.button.dataset.kind = kind;
    this.button.dataset.state = state.state;
    this.button.title = state.error
      ? `KVM switch (${state.driver}): ${state.error}`
      : `KVM switch (${state.driver}): choose the machine on the console`;
    const key = JSON.stringify([state.ports, state.active, state.state]);
    if (key === this.shown) return;
    this.shown = key;
    const focused = this.menu.contains(document.activeElement);
    this.menu.replaceChildren();
    for (const port of state.ports) {
      const isActive = port.port === state.active;
      const item = addMenuItem(
        this.menu,
        `${isActive ? "●" : "○"} ${port.port}  ${port.name}`,
        () => this.select(port.port),
        `Port ${port.port}: layout ${port.layout}, mouse ${port.mouse}`,
      );
      item.setAttribute("aria-checked", String(isActive));
      item.dataset.port = String(port.port);
      item.disabled = state.state === "offline" && state.can_query;
    }
    if (focused && this.menu.firstElementChild) this.menu.firstElementChild.focus();
  }

  async select(port) {
    if (this.pending !== null) return;
    this.pending = port;
    this.render(this.state);
    try {
      const answer = await api("POST", "/api/switch/select", { port });
      this.pending = null;
      this.render(answer);
    } catch (err) {
      this.pending = null;
      this.render(this.state);
      this.toast(`Could not switch to port ${port}: ${err.message}`);
    }
  }
}
