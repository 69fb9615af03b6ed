// User preferences kept in localStorage (per browser), with defaults and range checks.

const KEY = "ipkvm.console.settings";

const DEFAULTS = Object.freeze({
  quality: 80, // MJPEG JPEG quality, 10..100
  fps: 30, // MJPEG frame-rate cap
  sensitivity: 1.0, // relative mouse multiplier
  showStats: true, // fps / latency overlay
  pasteLayout: "", // "" = the appliance's default layout
  pacingMs: 12,
  transport: "auto", // "auto" or a transport id (see transport.js)
});

function clamp(value, lo, hi, fallback) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : fallback;
}

function loadSettings() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(KEY) || "{}") || {};
  } catch {
    saved = {};
  }
  return {
    quality: clamp(saved.quality, 10, 100, DEFAULTS.quality),
    fps: clamp(saved.fps, 1, 60, DEFAULTS.fps),
    sensitivity: clamp(saved.sensitivity, 0.1, 4, DEFAULTS.sensitivity),
    showStats: typeof saved.showStats === "boolean" ? saved.showStats : DEFAULTS.showStats,
    pasteLayout: typeof saved.pasteLayout === "string" ? saved.pasteLayout : DEFAULTS.pasteLayout,
    pacingMs: clamp(saved.pacingMs, 0, 1000, DEFAULTS.pacingMs),
    transport: typeof saved.transport === "string" ? saved.transport : DEFAULTS.transport,
  };
}

function saveSettings(settings) {
  try {
    localStorage.setItem(KEY, JSON.stringify(settings));
  } catch {
    // Private mode or quota: settings just do not persist.
  }
}

/** The console's settings: read once, update() saves and tells listeners. */
export class Settings extends EventTarget {
  constructor() {
    super();
    this.values = loadSettings();
  }

  update(partial) {
    Object.assign(this.values, partial);
    saveSettings(this.values);
    this.dispatchEvent(new CustomEvent("change", { detail: partial }));
  }
}
