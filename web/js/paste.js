// Paste panel: types a text on the target through POST /api/hid/type with "wait": false.
// The 202 answer lists the characters the chosen layout cannot type (shown at once); progress
// and the final result arrive as type_progress events on the WebSocket for our job id.

import { api } from "./api.js";

export class PastePanel {
  /**
   * @param {object} els  {text, layout, pacing, progress, result, untypable, send, cancel}
   * @param {EventTarget} socket  the KvmSocket (type_progress events)
   * @param {object} settings  persisted settings (pasteLayout, pacingMs) and save()
   */
  constructor(els, socket, settings) {
    this.els = els;
    this.settings = settings;
    this.job = null;
    this.finished = null; // a final progress event that arrived before our 202 answer
    els.send.addEventListener("click", () => this.start());
    els.cancel.addEventListener("click", () => this.cancel());
    els.layout.addEventListener("change", () => settings.update({ pasteLayout: els.layout.value }));
    els.pacing.addEventListener("change", () => settings.update({ pacingMs: Number(els.pacing.value) }));
    // Ctrl+Enter in the text box sends it.
    els.text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.start();
      }
    });
    socket.addEventListener("type_progress", (e) => this.progress(e.detail));
    els.pacing.value = String(settings.values.pacingMs);
  }

  /** Fill the layout selector from GET /api/hid/layouts. */
  async loadLayouts() {
    let data;
    try {
      data = await api("GET", "/api/hid/layouts");
    } catch {
      data = { layouts: ["us"], default: "us" };
    }
    const wanted = this.settings.values.pasteLayout || data.default;
    this.els.layout.replaceChildren(
      ...data.layouts.map((name) => {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = name;
        option.selected = name === wanted;
        return option;
      }),
    );
  }

  busy(on) {
    // Keep keyboard focus on an enabled button when the focused one gets disabled.
    const focused = document.activeElement;
    this.els.send.disabled = on;
    this.els.cancel.disabled = !on;
    if (on && focused === this.els.send) this.els.cancel.focus();
    if (!on && focused === this.els.cancel) this.els.send.focus();
  }

  say(text, kind = "") {
    this.els.result.textContent = text;
    this.els.result.dataset.kind = kind;
  }

  showUntypable(list) {
    const ul = this.els.untypable;
    ul.replaceChildren();
    ul.hidden = !list || list.length === 0;
    if (ul.hidden) return;
    const seen = new Map();
    for (const u of list) seen.set(u.char, (seen.get(u.char) || []).concat(u.index + 1));
    for (const [char, places] of seen) {
      const li = document.createElement("li");
      const codepoint = `U+${char.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
      const shown = char.trim() === "" ? codepoint : `“${char}”`;
      const where = places.length > 5 ? `${places.slice(0, 5).join(", ")}, …` : places.join(", ");
      li.textContent = `${shown} (${codepoint}) at position ${where}`;
      ul.append(li);
    }
  }

  async start() {
    const text = this.els.text.value;
    if (!text) {
      this.say("Nothing to type.", "error");
      return;
    }
    this.busy(true);
    this.els.progress.max = 1;
    this.els.progress.value = 0;
    this.showUntypable([]);
    this.say("Starting…");
    const pacing = Number(this.els.pacing.value);
    try {
      const answer = await api("POST", "/api/hid/type", {
        text,
        layout: this.els.layout.value || undefined,
        pacing_ms: Number.isFinite(pacing) ? pacing : 12,
        wait: false,
      });
      this.job = answer.job;
      this.showUntypable(answer.untypable);
      if (this.finished && this.finished.job === this.job) this.progress(this.finished);
      else this.say(`Typing ${text.length} characters…`);
    } catch (err) {
      this.busy(false);
      this.say(`Could not type: ${err.message}`, "error");
    }
  }

  progress(event) {
    if (this.job === null || event.job !== this.job) {
      // The final event can beat the 202 answer on a short text: keep it for start().
      if (event.done) this.finished = event;
      return;
    }
    if (event.total) {
      this.els.progress.max = event.total;
      this.els.progress.value = event.typed ?? 0;
    }
    if (!event.done) {
      this.say(`Typing… ${event.typed} of ${event.total}`);
      return;
    }
    this.job = null;
    this.finished = null;
    this.busy(false);
    if (event.error) {
      this.say(event.error === "cancelled" ? "Cancelled." : `Stopped: ${event.error}`, "error");
      return;
    }
    this.els.progress.max = 1;
    this.els.progress.value = 1;
    const skipped = (event.untypable || []).length;
    this.showUntypable(event.untypable);
    this.say(
      skipped
        ? `Typed ${event.chars - skipped} of ${event.chars} characters; ${skipped} could not be typed with layout “${this.els.layout.value}”:`
        : `Typed ${event.chars} characters.`,
      skipped ? "warn" : "ok",
    );
  }

  async cancel() {
    try {
      await api("POST", "/api/hid/type/cancel");
    } catch (err) {
      this.say(`Cancel failed: ${err.message}`, "error");
    }
  }
}
