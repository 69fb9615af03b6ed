// Who is connected, who is typing, and exclusive control (the "presence" WebSocket event).
import { api } from "./api.js";

export class Presence {
  constructor(list, button, toast) {
    this.list = list;
    this.button = button;
    this.toast = toast;
    this.client = null; // this console's WebSocket client id (the "hello" event)
    this.role = null;
    this.state = { holder: null, clients: [] };
    button.addEventListener("click", () => this.toggle());
    this.render(this.state);
  }

  hello(msg) {
    this.client = msg.client;
    this.role = msg.role;
    this.render(this.state);
  }

  mine() {
    const me = this.state.clients.find((c) => c.client === this.client);
    return Boolean(me && me.control);
  }

  render(state) {
    this.state = state;
    const items = state.clients.map((c) => {
      const span = document.createElement("span");
      span.className = "who";
      if (c.typing) span.classList.add("typing");
      if (c.control) span.classList.add("control");
      const self = c.client === this.client ? " (you)" : "";
      span.textContent = `${c.user}${self}${c.typing ? " ⌨" : ""}`;
      span.title = `${c.user} (${c.role})${c.typing ? ", typing" : ""}${c.control ? ", has exclusive control" : ""}`;
      span.dataset.user = c.user;
      return span;
    });
    this.list.replaceChildren(...items);
    const holder = state.holder;
    const mine = this.mine();
    const b = this.button;
    b.hidden = this.role === "viewer";
    b.disabled = false;
    if (!holder) {
      b.textContent = "Take control";
      b.dataset.action = "take";
    } else if (mine) {
      b.textContent = "Release control";
      b.dataset.action = "release";
    } else if (this.role === "admin") {
      b.textContent = `Take over from ${holder.user}`;
      b.dataset.action = "force";
    } else {
      b.textContent = `${holder.user} has control`;
      b.dataset.action = "";
      b.disabled = true;
    }
    document.body.classList.toggle("view-only", Boolean(holder) && !mine);
  }

  async toggle() {
    const action = this.button.dataset.action;
    if (!action) return;
    const body =
      action === "force" ? { action: "take", force: true } : { action };
    try {
      await api("POST", "/api/control", body);
    } catch (err) {
      this.toast(`Control: ${err.message}`);
    }
  }
}
