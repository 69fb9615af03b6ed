// Back-off and the stall watchdog, shared by the video transports. A transport using these keeps
// `running`, `attempt`, `retryTimer` and `stallTimer`, and has `connect()` and `onStatus()`.

/** Report the failure and connect() again after the next back-off delay (while running). */
export function scheduleRetry(transport, reason, delaysMs) {
  clearTimeout(transport.stallTimer);
  transport.onStatus("error", reason);
  const delay = delaysMs[Math.min(transport.attempt, delaysMs.length - 1)];
  transport.attempt += 1;
  if (transport.running) transport.retryTimer = setTimeout(() => transport.connect(), delay);
}

/** (Re)start the watchdog: nothing for *ms* → status "stalled" and a fresh connect(). */
export function armStallTimer(transport, ms) {
  clearTimeout(transport.stallTimer);
  transport.stallTimer = setTimeout(() => {
    if (!transport.running) return;
    transport.onStatus("stalled");
    transport.connect();
  }, ms);
}
