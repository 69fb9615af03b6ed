// MJPEG transport: reads /api/stream.mjpeg with fetch() and shows each JPEG part in an <img>.
//
// Why not just <img src="/api/stream.mjpeg">: Chrome fires no event per part nor when the
// stream ends, so the console could neither count frames nor notice a dead stream. Parsing the
// multipart body ourselves gives both, and we still display through an <img>.

import { FpsMeter, RateMeter } from "./fps.js";
import { armStallTimer, scheduleRetry } from "./reconnect.js";

// The server sends a part at least about once a second even on a static screen.
const STALL_MS = 4000;
const RETRY_MS = [500, 1000, 2000, 3000, 5000];

const CRLF2 = new Uint8Array([13, 10, 13, 10]);
const decoder = new TextDecoder();
const encoder = new TextEncoder();

function indexOf(haystack, needle, from = 0) {
  const first = needle[0];
  const last = haystack.length - needle.length;
  for (let i = haystack.indexOf(first, from); i !== -1 && i <= last; i = haystack.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j += 1;
    if (j === needle.length) return i;
  }
  return -1;
}

function concat(a, b) {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Incremental multipart/x-mixed-replace parser. feed() bytes, get back complete parts'
 * bodies. Uses Content-Length when the part has one, otherwise scans for the next boundary.
 */
export class MultipartParser {
  constructor(boundary) {
    this.delimiter = encoder.encode(`--${boundary}`);
    this.nextDelimiter = encoder.encode(`\r\n--${boundary}`);
    this.buf = new Uint8Array(0);
    this.length = null; // body length of the current part, when known
    this.inBody = false;
  }

  feed(chunk) {
    this.buf = concat(this.buf, chunk);
    const parts = [];
    for (;;) {
      if (!this.inBody) {
        const at = indexOf(this.buf, this.delimiter);
        if (at === -1) break;
        const end = indexOf(this.buf, CRLF2, at + this.delimiter.length);
        if (end === -1) break;
        const headers = decoder.decode(this.buf.subarray(at + this.delimiter.length, end));
        const match = /content-length:\s*(\d+)/i.exec(headers);
        this.length = match ? Number(match[1]) : null;
        this.buf = this.buf.subarray(end + 4);
        this.inBody = true;
      }
      if (this.length !== null) {
        if (this.buf.length < this.length) break;
        parts.push(this.buf.slice(0, this.length));
        this.buf = this.buf.subarray(this.length);
      } else {
        const at = indexOf(this.buf, this.nextDelimiter);
        if (at === -1) break;
        parts.push(this.buf.slice(0, at));
        this.buf = this.buf.subarray(at + 2);
      }
      this.inBody = false;
    }
    if (!this.inBody && this.buf.length > 1 << 20) this.buf = new Uint8Array(0); // garbage guard
    return parts;
  }
}

export class MjpegTransport {
  static id = "mjpeg";
  static label = "MJPEG";

  static async available() {
    return typeof fetch === "function" && typeof ReadableStream === "function";
  }

  constructor({ onStatus = () => {}, onFrame = () => {} } = {}) {
    this.onStatus = onStatus;
    this.onFrame = onFrame;
    this.options = { fps: 30, quality: 80 };
    this.element = null;
    this.meter = new FpsMeter();
    this.rate = new RateMeter();
    this.abort = null;
    this.retryTimer = null;
    this.stallTimer = null;
    this.attempt = 0;
    this.running = false;
    this.shownUrl = null; // object URL currently displayed
    this.pending = null; // newest frame waiting for the <img> to finish decoding
    this.decoding = false;
    this.playing = false;
    this.nextUrl = null;
  }

  get fps() {
    return this.meter.fps;
  }

  /** Received video data rate, kbit/s. */
  get kbps() {
    return this.rate.kbps;
  }

  pictureSize() {
    const img = this.element;
    if (!img || !img.naturalWidth) return null;
    return { width: img.naturalWidth, height: img.naturalHeight };
  }

  start(container, options = {}) {
    this.options = { ...this.options, ...options };
    const img = document.createElement("img");
    img.className = "video";
    img.alt = "Target screen";
    img.draggable = false;
    img.decoding = "async";
    img.addEventListener("load", () => this.shown());
    img.addEventListener("error", () => this.shown());
    container.replaceChildren(img);
    this.element = img;
    this.running = true;
    this.connect();
  }

  stop() {
    this.suspend();
    for (const url of [this.shownUrl, this.pending, this.nextUrl]) if (url) URL.revokeObjectURL(url);
    this.shownUrl = this.pending = this.nextUrl = null;
    if (this.element) this.element.remove();
    this.element = null;
  }

  restart() {
    if (!this.element) return; // stopped for good
    this.running = true;
    this.attempt = 0;
    this.connect();
  }

  suspend() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.stallTimer);
    if (this.abort) this.abort.abort();
    this.abort = null;
  }

  configure(options) {
    this.options = { ...this.options, ...options };
    this.restart();
  }

  url() {
    const q = new URLSearchParams({
      fps: String(this.options.fps),
      quality: String(this.options.quality),
    });
    return `/api/stream.mjpeg?${q}`;
  }

  async connect() {
    clearTimeout(this.retryTimer);
    if (this.abort) this.abort.abort();
    const abort = new AbortController();
    this.abort = abort;
    this.playing = false;
    this.onStatus("connecting");
    this.armStallTimer();
    try {
      const response = await fetch(this.url(), {
        credentials: "same-origin",
        cache: "no-store",
        signal: abort.signal,
      });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      const type = response.headers.get("Content-Type") || "";
      const boundary = (/boundary="?([^";]+)"?/i.exec(type) || [])[1] || "frame";
      const parser = new MultipartParser(boundary);
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) throw new Error("stream ended");
        this.rate.add(value.byteLength);
        for (const part of parser.feed(value)) this.frame(part);
      }
    } catch (err) {
      if (abort.signal.aborted || this.abort !== abort) return; // superseded on purpose
      this.abort = null;
      scheduleRetry(this, String(err && err.message ? err.message : err), RETRY_MS);
    }
  }

  armStallTimer() {
    armStallTimer(this, STALL_MS);
  }

  // A complete JPEG arrived. Show it, or keep only the newest while the <img> is busy:
  // latest frame wins, nothing queues up behind a slow decoder.
  frame(bytes) {
    this.armStallTimer();
    if (!this.playing) {
      this.playing = true;
      this.onStatus("playing");
    }
    this.attempt = 0;
    const url = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
    if (this.decoding) {
      if (this.pending) URL.revokeObjectURL(this.pending);
      this.pending = url;
      return;
    }
    this.display(url);
  }

  display(url) {
    this.decoding = true;
    this.element.src = url;
    this.nextUrl = url;
  }

  shown() {
    if (!this.element) return;
    if (this.shownUrl && this.shownUrl !== this.nextUrl) URL.revokeObjectURL(this.shownUrl);
    this.shownUrl = this.nextUrl;
    this.decoding = false;
    this.meter.tick();
    this.onFrame();
    if (this.pending) {
      const url = this.pending;
      this.pending = null;
      this.display(url);
    }
  }
}
