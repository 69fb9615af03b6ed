// WebRTC transport: the appliance's shared H.264 stream in a <video> element, plus two data
// channels for input ("input": ordered and reliable, for keys and buttons; "pointer": unordered,
// no retransmits, for absolute moves, where a late move is worthless).
//
// Signalling is one request: POST /api/webrtc/offer with our complete offer (we wait for ICE
// gathering, the server does not trickle) → the answer. Works on a LAN with no STUN server;
// options.iceServers adds STUN/TURN when the appliance is behind NAT.
//
// Input API beyond the common transport interface (see transport.js):
//   send(message) → boolean   same JSON as /api/ws; false when the channel is not open (the
//                             caller then uses the WebSocket)
//   inputReady                true while the "input" channel is open

import { FpsMeter } from "./fps.js";
import { armStallTimer, scheduleRetry } from "./reconnect.js";

const STALL_MS = 5000;
const RETRY_MS = [500, 1000, 2000, 3000, 5000];
const GATHER_MS = 2000;

function waitForIceGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_MS); // host candidates come at once; STUN may lag
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** H.264 (packetization-mode 1, constrained baseline first) ahead of everything else. */
function preferH264(transceiver) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver?.getCapabilities) return;
  const caps = RTCRtpReceiver.getCapabilities("video");
  if (!caps) return;
  const score = (c) => {
    if (c.mimeType.toLowerCase() !== "video/h264") return 2;
    const fmtp = c.sdpFmtpLine || "";
    if (!/packetization-mode=1/.test(fmtp)) return 2;
    return /profile-level-id=42e0/i.test(fmtp) ? 0 : 1;
  };
  const codecs = [...caps.codecs].sort((a, b) => score(a) - score(b));
  try {
    transceiver.setCodecPreferences(codecs);
  } catch {
    // Older browsers: the server still picks H.264 from the offer.
  }
}

export class WebRtcTransport {
  static id = "webrtc";
  static label = "WebRTC";

  static async available() {
    return typeof RTCPeerConnection === "function";
  }

  constructor({ onStatus = () => {}, onFrame = () => {} } = {}) {
    this.onStatus = onStatus;
    this.onFrame = onFrame;
    this.options = { iceServers: [] };
    this.element = null;
    this.meter = new FpsMeter();
    this.pc = null;
    this.input = null;
    this.pointer = null;
    this.running = false;
    this.playing = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.stallTimer = null;
    this.frameCallback = null;
    /** Capture → expected display delay in ms when the browser reports captureTime, or null. */
    this.latency = null;
    this.kbps = null; // from RTP stats: see sampleRate()
    this.statsAt = 0;
    this.statsBytes = null;
    this.statsTs = 0;
  }

  get fps() {
    return this.meter.fps;
  }

  get inputReady() {
    return this.input !== null && this.input.readyState === "open";
  }

  pictureSize() {
    const v = this.element;
    if (!v || !v.videoWidth) return null;
    return { width: v.videoWidth, height: v.videoHeight };
  }

  start(container, options = {}) {
    this.options = { ...this.options, ...options };
    const video = document.createElement("video");
    video.className = "video";
    video.autoplay = true;
    video.muted = true;
    video.playsInline = true;
    video.disablePictureInPicture = true;
    video.setAttribute("aria-label", "Target screen");
    container.replaceChildren(video);
    this.element = video;
    this.running = true;
    this.watchFrames();
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.stallTimer);
    this.closePeer();
    if (this.element) {
      this.element.srcObject = null;
      this.element.remove();
    }
    this.element = null;
  }

  restart() {
    if (!this.element) return; // stopped for good
    this.running = true;
    this.attempt = 0;
    this.connect();
  }

  /** The page is hidden: close the peer (its keys are released server-side); restart() resumes. */
  suspend() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.stallTimer);
    this.closePeer();
  }

  // The shared encoder's settings are the appliance's: nothing to renegotiate per viewer.
  configure(options) {
    this.options = { ...this.options, ...options };
  }

  /** Send one input message (same JSON as /api/ws). Moves go unreliable, the rest reliable. */
  send(message) {
    const channel =
      message.type === "mouse" && this.pointer && this.pointer.readyState === "open"
        ? this.pointer
        : this.input;
    if (!channel || channel.readyState !== "open") return false;
    channel.send(JSON.stringify(message));
    return true;
  }

  closePeer() {
    const pc = this.pc;
    this.pc = null;
    this.input = null;
    this.pointer = null;
    if (pc) {
      pc.onconnectionstatechange = null;
      pc.ontrack = null;
      pc.close();
    }
  }

  async connect() {
    clearTimeout(this.retryTimer);
    this.closePeer();
    this.playing = false;
    this.onStatus("connecting");
    this.armStallTimer();
    const pc = new RTCPeerConnection({ iceServers: this.options.iceServers || [] });
    this.pc = pc;
    try {
      const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
      preferH264(transceiver);
      this.input = pc.createDataChannel("input", { ordered: true });
      this.pointer = pc.createDataChannel("pointer", { ordered: false, maxRetransmits: 0 });
      this.input.onmessage = (event) => this.onChannelMessage(event.data);
      pc.ontrack = (event) => {
        const receiver = event.receiver;
        // Ask for no playout delay: show each frame as soon as it is decoded.
        if ("jitterBufferTarget" in receiver) receiver.jitterBufferTarget = 0;
        if ("playoutDelayHint" in receiver) receiver.playoutDelayHint = 0;
        const stream = event.streams[0] || new MediaStream([event.track]);
        if (this.element) {
          this.element.srcObject = stream;
          this.element.play().catch(() => {});
        }
      };
      pc.onconnectionstatechange = () => {
        if (this.pc !== pc) return;
        if (pc.connectionState === "failed" || pc.connectionState === "closed") {
          this.retry(`connection ${pc.connectionState}`);
        }
      };
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc);
      const response = await fetch("/api/webrtc/offer", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
      });
      if (!response.ok) throw new Error(`offer refused: HTTP ${response.status}`);
      const answer = await response.json();
      if (this.pc !== pc) return; // superseded meanwhile
      await pc.setRemoteDescription(answer);
    } catch (err) {
      if (this.pc !== pc) return;
      this.retry(String(err && err.message ? err.message : err));
    }
  }

  onChannelMessage(data) {
    try {
      const msg = JSON.parse(data);
      if (msg.type === "error") console.warn("input refused:", msg.message);
    } catch {
      // not ours
    }
  }

  retry(reason) {
    this.closePeer();
    this.playing = false;
    scheduleRetry(this, reason, RETRY_MS);
  }

  armStallTimer() {
    armStallTimer(this, STALL_MS);
  }

  // Count presented frames (requestVideoFrameCallback where available, else timeupdate).
  watchFrames() {
    const video = this.element;
    if (!video) return;
    const tick = (metadata) => {
      this.armStallTimer();
      this.attempt = 0;
      this.meter.tick();
      this.sampleRate();
      if (metadata && metadata.captureTime && metadata.expectedDisplayTime) {
        this.latency = metadata.expectedDisplayTime - metadata.captureTime;
      }
      if (!this.playing) {
        this.playing = true;
        this.onStatus("playing");
      }
      this.onFrame();
    };
    if (typeof video.requestVideoFrameCallback === "function") {
      const loop = (_now, metadata) => {
        if (this.element !== video) return;
        tick(metadata);
        video.requestVideoFrameCallback(loop);
      };
      video.requestVideoFrameCallback(loop);
    } else {
      video.addEventListener("timeupdate", () => tick(null));
    }
  }

  /** Received bitrate from the peer's inbound RTP stats, sampled about once a second. */
  sampleRate() {
    const now = performance.now();
    if (!this.pc || now - this.statsAt < 1000) return;
    this.statsAt = now;
    this.pc
      .getStats()
      .then((report) => {
        for (const s of report.values()) {
          if (s.type !== "inbound-rtp" || s.kind !== "video") continue;
          if (this.statsBytes !== null) {
            this.kbps = ((s.bytesReceived - this.statsBytes) * 8) / Math.max(1, s.timestamp - this.statsTs);
          }
          this.statsBytes = s.bytesReceived;
          this.statsTs = s.timestamp;
        }
      })
      .catch(() => {});
  }
}
