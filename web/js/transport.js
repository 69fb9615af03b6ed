// Video transports and how one is chosen.
//
// A transport shows the target's picture inside a container element. Interface:
//   static id                  short name ("webcodecs", "webrtc", "mjpeg")
//   static label               what the user sees ("MJPEG")
//   static available(state)    Promise<boolean>: can this browser + appliance use it now?
//   constructor({onStatus, onFrame})
//       onStatus(status, detail)  "connecting" | "playing" | "stalled" | "error"
//       onFrame()                 a new picture is on screen
//   start(container, options)  begin showing the picture (options: {fps, quality})
//   stop()                     tear down everything (connections, elements, timers)
//   restart()                  reconnect now (e.g. after the WebSocket came back)
//   suspend()                  stop receiving while the page is hidden (restart() resumes)
//   configure(options)         new fps/quality; reconnects if it must
//   element                    the element that displays the picture (img/video/canvas)
//   pictureSize()              {width, height} of the picture in pixels, or null
//   fps                        measured displayed frames per second, or null
//
// Preference order: WebCodecs over WebSocket (lowest latency), then WebRTC, then MJPEG
// (works everywhere). A new transport is one more class in TRANSPORTS, in preference order.
// WebCodecs needs a secure context (HTTPS, or localhost): over plain HTTP to a LAN address the
// console falls back to WebRTC.

import { MjpegTransport } from "./transport-mjpeg.js";
import { WebCodecsTransport } from "./transport-webcodecs.js";
import { WebRtcTransport } from "./transport-webrtc.js";

export const TRANSPORTS = [WebCodecsTransport, WebRtcTransport, MjpegTransport];

/**
 * The transport to use: *preferred* (an id, e.g. from ?transport=mjpeg or the Stream panel)
 * when it is known and available, else the first available in preference order, else MJPEG.
 */
export async function chooseTransport(state, preferred = "auto") {
  const wanted = TRANSPORTS.find((T) => T.id === preferred);
  const order = wanted ? [wanted, ...TRANSPORTS.filter((T) => T !== wanted)] : TRANSPORTS;
  for (const Transport of order) {
    try {
      if (await Transport.available(state)) return Transport;
    } catch {
      // A broken probe must not stop the console: try the next one.
    }
  }
  return MjpegTransport;
}
