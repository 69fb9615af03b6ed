// Mouse and touch: absolute mode sends the pointer position as 0..1 of the displayed picture
// (letterbox bars excluded, positions in them clamped to the edge); relative mode sends
// movement counts, with Pointer Lock when the browser grants it.

const BUTTONS = ["left", "middle", "right", "back", "forward"]; // PointerEvent.button order
const TAP_MS = 300;
const TAP_SLOP_PX = 10;
const WHEEL_PIXELS_PER_NOTCH = 100; // Chrome reports ~100 px per wheel click

/**
 * Where the picture really is inside an element that scales it with object-fit: contain.
 * Returns {left, top, width, height} in client coordinates, or null before the first frame.
 */
export function pictureRect(element, size) {
  if (!element || !size || !size.width || !size.height) return null;
  const box = element.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) return null;
  const scale = Math.min(box.width / size.width, box.height / size.height);
  const width = size.width * scale;
  const height = size.height * scale;
  return {
    left: box.left + (box.width - width) / 2,
    top: box.top + (box.height - height) / 2,
    width,
    height,
  };
}

const clamp01 = (v) => Math.min(1, Math.max(0, v));

export class MouseInput {
  /**
   * @param {HTMLElement} surface  the capture element receiving pointer events
   * @param {() => ({left, top, width, height} | null)} picture  current picture rectangle
   * @param {(msg: object) => boolean} send  WebSocket sender
   * @param {() => number} sensitivity  relative-mode multiplier
   */
  constructor(surface, picture, send, sensitivity) {
    this.surface = surface;
    this.picture = picture;
    this.send = send;
    this.sensitivity = sensitivity;
    this.mode = "absolute";
    this.pendingAbs = null; // latest absolute position not yet sent
    this.pendingRel = { dx: 0, dy: 0 }; // accumulated relative movement (fractional)
    this.frameRequested = false;
    this.wheelAcc = { x: 0, y: 0 };
    this.touch = null; // {id, x, y, t, moved}

    surface.addEventListener("pointermove", (e) => this.pointermove(e));
    surface.addEventListener("pointerdown", (e) => this.pointerdown(e));
    surface.addEventListener("pointerup", (e) => this.pointerup(e));
    surface.addEventListener("pointercancel", (e) => this.pointerup(e));
    surface.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    surface.addEventListener("contextmenu", (e) => e.preventDefault());
    // Back/forward buttons would navigate the browser away from the console.
    surface.addEventListener("mouseup", (e) => e.preventDefault());
    surface.addEventListener("auxclick", (e) => e.preventDefault());
    document.addEventListener("pointerlockchange", () => this.surface.classList.toggle(
      "locked", document.pointerLockElement === this.surface));
  }

  get locked() {
    return document.pointerLockElement === this.surface;
  }

  setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    this.surface.classList.toggle("relative", mode === "relative");
    if (mode !== "relative" && this.locked) document.exitPointerLock();
  }

  position(event) {
    const rect = this.picture();
    if (!rect) return null;
    return {
      x: clamp01((event.clientX - rect.left) / rect.width),
      y: clamp01((event.clientY - rect.top) / rect.height),
    };
  }

  // Moves are batched to one message per animation frame: the newest absolute position, or
  // the sum of relative movement. Buttons flush first so a click lands where it was aimed.
  schedule() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.flush();
    });
  }

  flush() {
    if (this.pendingAbs) {
      this.send({ type: "mouse", x: this.pendingAbs.x, y: this.pendingAbs.y });
      this.pendingAbs = null;
    }
    let { dx, dy } = this.pendingRel;
    let ix = Math.trunc(dx);
    let iy = Math.trunc(dy);
    this.pendingRel = { dx: dx - ix, dy: dy - iy }; // keep the fraction for smooth slow moves
    while (ix !== 0 || iy !== 0) {
      const sx = Math.max(-127, Math.min(127, ix));
      const sy = Math.max(-127, Math.min(127, iy));
      this.send({ type: "mouse_rel", dx: sx, dy: sy });
      ix -= sx;
      iy -= sy;
    }
  }

  moveRelative(dx, dy) {
    const k = this.sensitivity();
    this.pendingRel.dx += dx * k;
    this.pendingRel.dy += dy * k;
    this.schedule();
  }

  moveAbsolute(event) {
    const pos = this.position(event);
    if (!pos) return;
    this.pendingAbs = pos;
    this.schedule();
  }

  pointermove(event) {
    if (event.pointerType === "touch") return this.touchmove(event);
    if (this.mode === "relative") this.moveRelative(event.movementX, event.movementY);
    else this.moveAbsolute(event);
  }

  pointerdown(event) {
    event.preventDefault();
    this.surface.focus({ preventScroll: true });
    if (event.pointerType === "touch") return this.touchstart(event);
    const button = BUTTONS[event.button];
    if (!button) return;
    if (this.mode === "relative" && !this.locked && this.surface.requestPointerLock) {
      const p = this.surface.requestPointerLock();
      if (p && p.catch) p.catch(() => {}); // refused (e.g. headless): relative still works
    } else if (this.mode === "absolute") {
      this.moveAbsolute(event);
    }
    try {
      this.surface.setPointerCapture(event.pointerId);
    } catch {
      // Not capturable (already released): harmless.
    }
    this.flush();
    this.send({ type: "button", button, down: true });
  }

  pointerup(event) {
    if (event.pointerType === "touch") return this.touchend(event);
    event.preventDefault();
    const button = BUTTONS[event.button];
    if (!button) return;
    this.flush();
    this.send({ type: "button", button, down: false });
  }

  // Browser deltaY > 0 scrolls down (content towards the user); the API's dy > 0 means the
  // wheel turned away from the user, so the sign flips. deltaX > 0 is right in both.
  wheel(event) {
    event.preventDefault();
    const scale = event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? 800 : 1;
    const notches = (axis, delta) => {
      const d = delta * scale;
      if (d === 0) return 0;
      if (Math.abs(d) >= WHEEL_PIXELS_PER_NOTCH / 2) {
        // A real wheel click: at least one notch each.
        this.wheelAcc[axis] = 0;
        return Math.sign(d) * Math.max(1, Math.round(Math.abs(d) / WHEEL_PIXELS_PER_NOTCH));
      }
      // Touchpads send many small deltas: accumulate them.
      this.wheelAcc[axis] += d;
      const n = Math.trunc(this.wheelAcc[axis] / WHEEL_PIXELS_PER_NOTCH);
      this.wheelAcc[axis] -= n * WHEEL_PIXELS_PER_NOTCH;
      return n;
    };
    const ny = notches("y", event.deltaY);
    const nx = notches("x", event.deltaX);
    if (ny === 0 && nx === 0) return;
    if (this.mode === "absolute") this.moveAbsolute(event);
    this.flush();
    this.send({ type: "wheel", dy: -Math.max(-127, Math.min(127, ny)), dx: Math.max(-127, Math.min(127, nx)) });
  }

  // Touch: a short tap clicks (left); a drag moves the pointer (following the finger in
  // absolute mode, by the finger's movement in relative mode).
  touchstart(event) {
    if (this.touch) return; // one finger at a time
    this.touch = { id: event.pointerId, x: event.clientX, y: event.clientY, t: performance.now(), moved: false };
  }

  touchmove(event) {
    const t = this.touch;
    if (!t || t.id !== event.pointerId) return;
    event.preventDefault();
    const dx = event.clientX - t.x;
    const dy = event.clientY - t.y;
    if (!t.moved && Math.hypot(dx, dy) < TAP_SLOP_PX) return;
    t.moved = true;
    if (this.mode === "relative") this.moveRelative(dx, dy);
    else this.moveAbsolute(event);
    t.x = event.clientX;
    t.y = event.clientY;
  }

  touchend(event) {
    const t = this.touch;
    if (!t || t.id !== event.pointerId) return;
    this.touch = null;
    if (event.type === "pointercancel" || t.moved || performance.now() - t.t > TAP_MS) return;
    if (this.mode === "absolute") this.moveAbsolute(event);
    this.flush();
    this.send({ type: "button", button: "left", down: true });
    this.send({ type: "button", button: "left", down: false });
  }
}
