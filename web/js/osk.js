// On-screen keyboard: a US-style layout whose buttons send key codes (the target's layout
// decides the character, exactly like a physical keyboard). Modifiers are sticky: tap Shift,
// then a key, and Shift applies to that key only; tap a modifier twice to lock it.
//
// Each press sends modifiers down, key down, key up, modifiers up as one burst, so nothing
// stays held on the target if the page loses focus halfway.

const ROWS = [
  [["Escape", "Esc"], ["F1"], ["F2"], ["F3"], ["F4"], ["F5"], ["F6"], ["F7"], ["F8"], ["F9"], ["F10"], ["F11"], ["F12"], ["PrintScreen", "PrtSc"], ["Delete", "Del"]],
  [["Backquote", "`"], ["Digit1", "1"], ["Digit2", "2"], ["Digit3", "3"], ["Digit4", "4"], ["Digit5", "5"], ["Digit6", "6"], ["Digit7", "7"], ["Digit8", "8"], ["Digit9", "9"], ["Digit0", "0"], ["Minus", "-"], ["Equal", "="], ["Backspace", "⌫", 2]],
  [["Tab", "Tab", 1.5], ["KeyQ", "Q"], ["KeyW", "W"], ["KeyE", "E"], ["KeyR", "R"], ["KeyT", "T"], ["KeyY", "Y"], ["KeyU", "U"], ["KeyI", "I"], ["KeyO", "O"], ["KeyP", "P"], ["BracketLeft", "["], ["BracketRight", "]"], ["Backslash", "\\", 1.5]],
  [["CapsLock", "Caps", 1.75], ["KeyA", "A"], ["KeyS", "S"], ["KeyD", "D"], ["KeyF", "F"], ["KeyG", "G"], ["KeyH", "H"], ["KeyJ", "J"], ["KeyK", "K"], ["KeyL", "L"], ["Semicolon", ";"], ["Quote", "'"], ["Enter", "Enter", 2.25]],
  [["ShiftLeft", "Shift", 2.25], ["KeyZ", "Z"], ["KeyX", "X"], ["KeyC", "C"], ["KeyV", "V"], ["KeyB", "B"], ["KeyN", "N"], ["KeyM", "M"], ["Comma", ","], ["Period", "."], ["Slash", "/"], ["ShiftRight", "Shift", 1.75], ["ArrowUp", "↑"]],
  [["ControlLeft", "Ctrl", 1.5], ["MetaLeft", "Win", 1.25], ["AltLeft", "Alt", 1.25], ["Space", "Space", 5.5], ["AltRight", "AltGr", 1.25], ["ControlRight", "Ctrl", 1.25], ["ArrowLeft", "←"], ["ArrowDown", "↓"], ["ArrowRight", "→"]],
  [["Insert", "Ins"], ["Home"], ["End"], ["PageUp", "PgUp"], ["PageDown", "PgDn"], ["Pause"], ["ScrollLock", "ScrLk"], ["NumLock", "NumLk"], ["ContextMenu", "Menu"]],
];

const MODIFIERS = new Set([
  "ShiftLeft", "ShiftRight", "ControlLeft", "ControlRight", "AltLeft", "AltRight", "MetaLeft", "MetaRight",
]);

export class OnScreenKeyboard {
  /**
   * @param {HTMLElement} root  container to fill with key buttons
   * @param {(msg: object) => boolean} send  WebSocket sender
   */
  constructor(root, send) {
    this.root = root;
    this.send = send;
    this.latched = new Map(); // code → "once" | "locked"
    this.buttons = new Map();
    this.build();
  }

  build() {
    for (const row of ROWS) {
      const div = document.createElement("div");
      div.className = "osk-row";
      for (const [code, label = code, width = 1] of row) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "osk-key";
        button.dataset.code = code;
        button.textContent = label;
        button.style.flexGrow = String(width);
        if (MODIFIERS.has(code)) button.setAttribute("aria-pressed", "false");
        button.addEventListener("click", () => this.tap(code));
        div.append(button);
        this.buttons.set(code, button);
      }
      this.root.append(div);
    }
  }

  tap(code) {
    if (MODIFIERS.has(code)) {
      const state = this.latched.get(code);
      if (!state) this.latched.set(code, "once");
      else if (state === "once") this.latched.set(code, "locked");
      else this.latched.delete(code);
      this.render();
      return;
    }
    const mods = [...this.latched.keys()];
    for (const m of mods) this.send({ type: "key", code: m, down: true });
    this.send({ type: "key", code, down: true });
    this.send({ type: "key", code, down: false });
    for (const m of mods.reverse()) this.send({ type: "key", code: m, down: false });
    for (const [m, state] of this.latched) if (state === "once") this.latched.delete(m);
    this.render();
  }

  render() {
    for (const code of MODIFIERS) {
      const button = this.buttons.get(code);
      if (!button) continue;
      const state = this.latched.get(code);
      button.setAttribute("aria-pressed", state ? "true" : "false");
      button.classList.toggle("locked", state === "locked");
    }
  }
}
