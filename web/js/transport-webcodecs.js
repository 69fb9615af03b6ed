// H.264 over WebSocket, decoded with WebCodecs and painted on a <canvas>: the lowest-latency
// transport. Nothing sits between the appliance's encoder and the screen but TCP and the decoder:
// no jitter buffer, no RTP reassembly, no <video> element playout delay.
//
// Wire format (docs/api.md, "H.264 over WebSocket"): a text message {"type":"stream","codec",
// "width","height"} before the first keyframe (and on changes), then one binary message per
// access unit: a header (u8 flags bit0=keyframe, u8 header length, u16 width, u16 height,
// u16 reserved, u32 seq, u64 capture time in wall-clock microseconds, big-endian) + Annex-B data.
//
// Rendering: where the browser has MediaStreamTrackGenerator (Chromium), decoded frames go
// straight into a <video> element's track: the compositor shows them with no copy or colour
// conversion on the main thread (measured 1080p, software rendering: 39 ms glass-to-glass against
// 68 ms through a 2D canvas). Elsewhere, or with options.renderer = "canvas", they are painted on
// a <canvas> at the next animation frame.
//
// Latest frame wins: only the newest decoded frame is painted (or, for the track, frames are
// dropped while its sink is busy); if the decoder falls far behind we skip to a fresh keyframe
// instead of showing an ever older picture.

import { FpsMeter, RateMeter } from "./fps.js";
import { armStallTimer, scheduleRetry } from "./reconnect.js";

const STALL_MS = 4000; // the server sends a frame at least about once a second
const RETRY_MS = [250, 500, 1000, 2000, 3000, 5000];
// P-frames of a desktop decode in a few ms; a short backlog (a hiccup of the machine) drains by
// itself. Only a long one means "cannot keep up": then skip to a fresh keyframe, at most once
// every KEYFRAME_GAP_MS (a keyframe costs far more than a P-frame to encode and decode).
const MAX_DECODE_QUEUE = 10;
const KEYFRAME_GAP_MS = 2000;
const FALLBACK_CODEC = "avc1.42E01F";

/** "avc1.PPCCLL" from the first SPS in an Annex-B access unit, or null. */
export function codecFromAnnexB(bytes) {
  for (let i = 0; i + 4 < bytes.length; i += 1) {
    if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
      if ((bytes[i + 3] & 0x1f) === 7 && i + 6 < bytes.length) {
        const hex = (b) => b.toString(16).padStart(2, "0").toUpperCase();
        return `avc1.${hex(bytes[i + 4])}${hex(bytes[i + 5])}${hex(bytes[i + 6])}`;
      }
      i += 2;
    }
  }
  return null;
}

/** Parse one binary message: {keyframe, width, height, seq, captureUs, data}. */
export function parseAccessUnit(buffer) {
  const view = new DataView(buffer);
  const flags = view.getUint8(0);
  const headerLength = view.getUint8(1);
  return {
    keyframe: (flags & 1) === 1,
    width: view.getUint16(2),
    height: view.getUint16(4),
    seq: view.getUint32(8),
    captureUs: Number(view.getBigUint64(12)),
    data: new Uint8Array(buffer, headerLength),
  };
}

export class WebCodecsTransport {
  static id = "webcodecs";
  static label = "H.264 (WebCodecs)";

  static async available() {
    if (typeof VideoDecoder !== "function" || typeof EncodedVideoChunk !== "function") return false;
    if (typeof WebSocket !== "function") return false;
    try {
      const support = await VideoDecoder.isConfigSupported({ codec: FALLBACK_CODEC });
      return Boolean(support.supported);
    } catch {
      return false;
    }
  }

  constructor({ onStatus = () => {}, onFrame = () => {} } = {}) {
    this.onStatus = onStatus;
    this.onFrame = onFrame;
    this.options = {};
    this.element = null;
    this.ctx = null;
    this.meter = new FpsMeter();
    this.rate = new RateMeter();
    this.ws = null;
    this.decoder = null;
    this.codec = null;
    this.waitKey = true;
    this.running = false;
    this.playing = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.stallTimer = null;
    /** Last measured capture → painted delay in ms (same-clock machines only), or null. */
    this.latency = null;
    /** Last capture → arrival (WebSocket message) delay in ms, for diagnostics. */
    this.arrival = null;
    this.lastSeq = null;
    this.pending = null; // newest decoded frame not yet painted
    this.generator = null; // MediaStreamTrackGenerator when rendering through a <video>
    this.writer = null;
    this.keyAskedAt = -Infinity;
    this.rafId = null;
  }

  get fps() {
    return this.meter.fps;
  }

  /** Received video data rate, kbit/s. */
  get kbps() {
    return this.rate.kbps;
  }

  pictureSize() {
    const el = this.element;
    if (!el || !this.playing) return null;
    const width = this.writer ? el.videoWidth : el.width;
    const height = this.writer ? el.videoHeight : el.height;
    return width ? { width, height } : null;
  }

  start(container, options = {}) {
    this.options = { ...this.options, ...options };
    const renderer = this.options.renderer || "auto";
    if (renderer !== "canvas" && typeof MediaStreamTrackGenerator === "function") {
      const video = document.createElement("video");
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      video.disablePictureInPicture = true;
      this.generator = new MediaStreamTrackGenerator({ kind: "video" });
      this.writer = this.generator.writable.getWriter();
      video.srcObject = new MediaStream([this.generator]);
      this.element = video;
    } else {
      const canvas = document.createElement("canvas");
      this.ctx = canvas.getContext("2d", { alpha: false, desynchronized: true });
      this.element = canvas;
    }
    this.element.className = "video";
    this.element.setAttribute("aria-label", "Target screen");
    container.replaceChildren(this.element);
    this.running = true;
    this.connect();
  }

  stop() {
    this.running = false;
    if (this.rafId !== null) cancelAnimationFrame(this.rafId);
    this.rafId = null;
    if (this.pending) this.pending.close();
    this.pending = null;
    clearTimeout(this.retryTimer);
    clearTimeout(this.stallTimer);
    this.closeSocket();
    this.closeDecoder();
    if (this.writer) this.writer.close().catch(() => {});
    if (this.generator) this.generator.stop();
    this.writer = null;
    this.generator = null;
    if (this.element) {
      if (this.element.srcObject !== undefined) this.element.srcObject = null;
      this.element.remove();
    }
    this.element = null;
    this.ctx = null;
  }

  restart() {
    if (!this.element) return; // stopped for good
    this.running = true;
    this.attempt = 0;
    this.connect();
  }

  /** The page is hidden: stop receiving and decoding; restart() resumes with a keyframe. */
  suspend() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.stallTimer);
    this.closeSocket();
    this.closeDecoder();
  }

  // One shared encoder serves every viewer: fps and quality are the appliance's settings.
  configure(options) {
    this.options = { ...this.options, ...options };
  }

  closeSocket() {
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, "bye");
      } catch {
        // already closed
      }
    }
  }

  closeDecoder() {
    if (this.decoder && this.decoder.state !== "closed") {
      try {
        this.decoder.close();
      } catch {
        // already closed
      }
    }
    this.decoder = null;
    this.codec = null;
    this.waitKey = true;
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.closeSocket();
    this.closeDecoder();
    this.playing = false;
    this.onStatus("connecting");
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${window.location.host}/api/stream.h264`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.armStallTimer();
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.armStallTimer();
      if (typeof event.data !== "string") this.rate.add(event.data.byteLength);
      if (typeof event.data === "string") this.onText(event.data);
      else this.onAccessUnit(parseAccessUnit(event.data));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.retry("connection closed");
    };
    ws.onerror = () => {}; // onclose follows
  }

  retry(reason) {
    this.closeDecoder();
    this.playing = false;
    scheduleRetry(this, reason, RETRY_MS);
  }

  armStallTimer() {
    armStallTimer(this, STALL_MS);
  }

  onText(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg && msg.type === "stream" && msg.codec) this.configureDecoder(msg.codec, msg);
  }

  configureDecoder(codec, size = {}) {
    if (this.decoder && this.codec === codec && this.decoder.state === "configured") return;
    this.closeDecoder();
    const decoder = new VideoDecoder({
      output: (frame) => this.decoded(frame),
      error: (err) => this.decoderError(err),
    });
    const config = { codec, optimizeForLatency: true };
    if (size.width && size.height) {
      config.codedWidth = size.width;
      config.codedHeight = size.height;
    }
    decoder.configure(config);
    this.decoder = decoder;
    this.codec = codec;
    this.waitKey = true;
  }

  /** Ask the appliance for a keyframe; false when not sent (too soon after the last ask). */
  requestKeyframe(force = false) {
    const now = performance.now();
    if (!force && now - this.keyAskedAt < KEYFRAME_GAP_MS) return false;
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.keyAskedAt = now;
    this.ws.send(JSON.stringify({ type: "keyframe" }));
    return true;
  }

  decoderError(err) {
    console.warn("H.264 decoder error, waiting for a keyframe:", err && err.message);
    const codec = this.codec;
    this.closeDecoder();
    if (codec) this.configureDecoder(codec);
    this.requestKeyframe(true);
  }

  onAccessUnit(unit) {
    this.arrival = Date.now() - unit.captureUs / 1000;
    if (unit.keyframe) {
      const codec = codecFromAnnexB(unit.data) || this.codec || FALLBACK_CODEC;
      if (!this.decoder || this.codec !== codec) this.configureDecoder(codec, unit);
    }
    const decoder = this.decoder;
    if (!decoder || decoder.state !== "configured") return;
    if (this.waitKey && !unit.keyframe) return;
    if (!unit.keyframe && decoder.decodeQueueSize > MAX_DECODE_QUEUE && this.requestKeyframe()) {
      // The decoder cannot keep up: showing every frame late is worse than skipping to a
      // fresh keyframe.
      this.waitKey = true;
      return;
    }
    this.waitKey = false;
    this.lastSeq = unit.seq;
    decoder.decode(
      new EncodedVideoChunk({
        type: unit.keyframe ? "key" : "delta",
        timestamp: unit.captureUs, // comes back on the VideoFrame: latency without bookkeeping
        data: unit.data,
      }),
    );
  }

  // A decoded frame waits for the next animation frame, and only the newest one is painted:
  // painting right away would not reach the screen sooner (the compositor shows the canvas at
  // the next frame either way), but when painting is slow (large pictures, software rendering)
  // frames would queue behind it. Latest frame wins, here too.
  decoded(frame) {
    if (this.writer) {
      this.latency = Date.now() - frame.timestamp / 1000;
      if (this.writer.desiredSize !== null && this.writer.desiredSize <= 0) {
        frame.close(); // the sink is still busy with the previous frame
        return;
      }
      this.writer.write(frame).catch(() => {}); // the track takes (and closes) the frame
      this.shown();
      return;
    }
    if (this.pending) this.pending.close();
    this.pending = frame;
    if (this.rafId === null && this.running) {
      this.rafId = requestAnimationFrame(() => {
        this.rafId = null;
        const next = this.pending;
        this.pending = null;
        if (next) this.paint(next);
      });
    }
  }

  paint(frame) {
    try {
      const canvas = this.element;
      if (!canvas || !this.ctx) return;
      const w = frame.displayWidth;
      const h = frame.displayHeight;
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
      this.ctx.drawImage(frame, 0, 0, w, h);
      this.latency = Date.now() - frame.timestamp / 1000;
    } finally {
      frame.close();
    }
    this.shown();
  }

  shown() {
    this.attempt = 0;
    this.meter.tick();
    if (!this.playing) {
      this.playing = true;
      this.onStatus("playing");
    }
    this.onFrame();
  }
}
