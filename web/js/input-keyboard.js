// Keyboard capture: physical keys (KeyboardEvent.code) pressed while the capture area has
// focus go to the target as {"type": "key"} messages. The target applies its own layout, so
// the browser's layout, IME and auto-repeat are irrelevant (repeats are dropped: the target's
// typematic repeat does that job).
//
// Stuck keys are the classic KVM bug: the browser loses keyup events when focus leaves, the
// tab hides or the page unloads. So on any of those we send release_all.

// Ctrl+Alt+Shift+M leaves the capture area (keys typed in it never reach the browser UI,
// so keyboard-only users need a way out that the target will hardly ever need).
const LEAVE_CODE = "KeyM";

export class KeyboardInput {
  /**
   * @param {HTMLElement} surface  the focusable capture element
   * @param {(msg: object) => boolean} send  WebSocket sender
   * @param {() => void} onLeave  called after the leave chord (move focus to the toolbar)
   */
  constructor(surface, send, onLeave) {
    this.surface = surface;
    this.send = send;
    this.onLeave = onLeave;
    this.held = new Set();
    surface.addEventListener("keydown", (e) => this.keydown(e));
    surface.addEventListener("keyup", (e) => this.keyup(e));
    // Focus leaving the capture area: its keyups will go elsewhere.
    surface.addEventListener("blur", () => this.releaseAll(false));
    window.addEventListener("blur", () => this.releaseAll(true));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.releaseAll(true);
    });
    window.addEventListener("pagehide", () => this.releaseAll(true));
  }

  keydown(event) {
    if (!event.code || event.isComposing) return; // IME composition or a key without a code
    event.preventDefault();
    event.stopPropagation();
    if (event.repeat) return;
    if (event.code === LEAVE_CODE && event.ctrlKey && event.altKey && event.shiftKey) {
      this.releaseAll(true);
      this.onLeave();
      return;
    }
    if (this.held.has(event.code)) return; // lost keyup: the target still holds it, fine
    this.held.add(event.code);
    this.send({ type: "key", code: event.code, down: true });
  }

  keyup(event) {
    if (!event.code) return;
    event.preventDefault();
    event.stopPropagation();
    if (this.held.delete(event.code)) {
      this.send({ type: "key", code: event.code, down: false });
    } else if (event.code === "PrintScreen") {
      // Some systems deliver PrintScreen as a keyup only: type it as a full press.
      this.send({ type: "key", code: event.code, down: true });
      this.send({ type: "key", code: event.code, down: false });
    }
  }

  /** Release everything this console holds on the target (keys and mouse buttons). */
  releaseAll(always) {
    if (!always && this.held.size === 0) return;
    this.held.clear();
    this.send({ type: "release_all" });
  }
}
