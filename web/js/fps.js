// Frame-rate measurement shared by the transports.

/** Counts displayed frames over a sliding window of about two seconds. */
export class FpsMeter {
  constructor(windowMs = 2000) {
    this.windowMs = windowMs;
    this.times = [];
  }

  tick(now = performance.now()) {
    this.times.push(now);
    const cutoff = now - this.windowMs;
    while (this.times.length && this.times[0] < cutoff) this.times.shift();
  }

  get fps() {
    const now = performance.now();
    const recent = this.times.filter((t) => t >= now - this.windowMs);
    if (recent.length < 2) return recent.length ? 1000 / this.windowMs : 0;
    return ((recent.length - 1) * 1000) / Math.max(1, recent[recent.length - 1] - recent[0]);
  }
}

/** Received bytes over a sliding window of about two seconds, as kbit/s. */
export class RateMeter {
  constructor(windowMs = 2000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  add(bytes, now = performance.now()) {
    this.samples.push([now, bytes]);
    const cutoff = now - this.windowMs;
    while (this.samples.length && this.samples[0][0] < cutoff) this.samples.shift();
  }

  get kbps() {
    const now = performance.now();
    const recent = this.samples.filter(([t]) => t >= now - this.windowMs);
    if (!recent.length) return 0;
    const bytes = recent.reduce((sum, [, n]) => sum + n, 0);
    return (bytes * 8) / this.windowMs;
  }
}
