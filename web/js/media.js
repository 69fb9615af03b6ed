// Virtual media panel: the images on the appliance (drag-and-drop upload with a progress bar,
// resumed when an incomplete image of the same name is there), download or stream from a URL,
// attach as CD-ROM or flash drive, detach, delete. Follows the WebSocket "media" and "job" events.

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);

export function human(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

export class MediaPanel {
  /** @param {(text: string) => void} toast */
  constructor(toast) {
    this.toast = toast;
    this.drive = $("media-drive");
    this.list = $("media-images");
    this.free = $("media-free");
    this.progress = $("media-progress");
    this.progressText = $("media-progress-text");
    this.drop = $("media-drop");
    this.fileInput = $("media-file");
    this.xhr = null;
    this.fetchJob = null;
    this.drop.addEventListener("dragover", (e) => {
      e.preventDefault();
      this.drop.classList.add("over");
    });
    this.drop.addEventListener("dragleave", () => this.drop.classList.remove("over"));
    this.drop.addEventListener("drop", (e) => {
      e.preventDefault();
      this.drop.classList.remove("over");
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) this.upload(file);
    });
    this.fileInput.addEventListener("change", () => {
      if (this.fileInput.files[0]) this.upload(this.fileInput.files[0]);
      this.fileInput.value = "";
    });
    $("media-cancel").addEventListener("click", () => this.cancel());
    $("media-detach").addEventListener("click", () => this.detach());
    $("media-fetch").addEventListener("click", () => this.fromUrl("download"));
    $("media-stream").addEventListener("click", () => this.fromUrl("stream"));
  }

  async refresh() {
    try {
      this.renderDrive(await api("GET", "/api/media"));
      this.renderImages(await api("GET", "/api/media/images"));
    } catch (err) {
      this.drive.textContent = `Virtual media: ${err.message}`;
    }
  }

  renderDrive(status) {
    this.status = status;
    let text;
    if (!status.available) text = `No virtual media: ${status.reason || "unavailable"}`;
    else if (!status.inserted) text = "Drive empty";
    else {
      const mode = status.read_only ? "read-only" : "read-write";
      const what = status.image || status.url || status.label;
      const label = status.volume_label ? ` — volume “${status.volume_label}”` : "";
      text = `${what}: ${status.kind === "cdrom" ? "CD-ROM" : "flash drive"}, ${mode}${label}`;
    }
    this.drive.textContent = text;
    $("media-detach").disabled = !status.inserted;
  }

  renderImages(data) {
    this.images = new Map(data.images.map((i) => [i.name, i]));
    this.free.textContent = `${human(data.free)} free · images up to ${human(data.max_image_size)}`;
    this.list.replaceChildren();
    const inserted = this.status && this.status.inserted;
    for (const image of data.images) {
      const row = document.createElement("li");
      row.dataset.name = image.name;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = image.name;
      name.title = image.sha256 ? `SHA-256 ${image.sha256}` : "checksum not known yet";
      const info = document.createElement("span");
      info.className = "muted";
      info.textContent = `${human(image.size)} · ${image.attached ? "attached" : image.state}`;
      row.append(name, info);
      const ready = image.state === "ready";
      const button = (label, onClick, disabled) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = label;
        b.disabled = disabled;
        b.addEventListener("click", onClick);
        row.append(b);
        return b;
      };
      button("CD", () => this.attach(image.name, "cdrom", true), !ready || inserted);
      button("Flash", () => this.attach(image.name, "flash", true), !ready || inserted);
      button("Flash (rw)", () => this.attach(image.name, "flash", false), !ready || inserted);
      button("Delete", () => this.remove(image.name), image.attached || image.state === "transferring");
      this.list.append(row);
    }
  }

  showProgress(text, done, total) {
    this.progress.hidden = false;
    this.progress.max = total || 1;
    this.progress.value = total ? done : 0;
    this.progressText.textContent = text;
  }

  hideProgress(text = "") {
    this.progress.hidden = true;
    this.progressText.textContent = text;
    $("media-cancel").disabled = true;
  }

  /** Upload *file*; an incomplete image of that name is continued (Content-Range). */
  async upload(file) {
    if (this.xhr) return this.toast("An upload is already running");
    const name = file.name;
    let start = 0;
    const have = this.images && this.images.get(name);
    if (have && have.state === "incomplete" && have.size <= file.size) start = have.size;
    const xhr = new XMLHttpRequest();
    this.xhr = xhr;
    xhr.open("PUT", `/api/media/images/${encodeURIComponent(name)}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    if (file.size) xhr.setRequestHeader("Content-Range", `bytes ${start}-${file.size - 1}/${file.size}`);
    $("media-cancel").disabled = false;
    const began = performance.now();
    xhr.upload.addEventListener("progress", (e) => {
      const done = start + e.loaded;
      const rate = e.loaded / Math.max((performance.now() - began) / 1000, 0.001);
      const pct = Math.floor((100 * done) / file.size);
      this.showProgress(`Uploading ${name}: ${pct}% · ${human(done)} of ${human(file.size)} · ${human(rate)}/s`, done, file.size);
    });
    const finished = new Promise((resolve) => {
      xhr.addEventListener("loadend", () => resolve());
    });
    this.showProgress(`Uploading ${name}…`, start, file.size);
    xhr.send(file.slice(start));
    await finished;
    this.xhr = null;
    let body = null;
    try {
      body = JSON.parse(xhr.responseText);
    } catch {
      body = null;
    }
    if (xhr.status === 201) this.hideProgress(`Uploaded ${name}`);
    else if (xhr.status === 0) this.hideProgress(`Upload of ${name} stopped: drop it again to resume`);
    else this.hideProgress(`Upload of ${name} failed: ${(body && body.error) || `HTTP ${xhr.status}`}`);
    this.refresh();
  }

  cancel() {
    if (this.xhr) this.xhr.abort();
  }

  async fromUrl(transfer) {
    const url = $("media-url").value.trim();
    if (!url) return this.toast("Enter an http:// or https:// URL");
    const sha256 = $("media-sha256").value.trim();
    try {
      if (transfer === "stream") {
        this.renderDrive(await api("POST", "/api/media/attach", { url, transfer: "stream" }));
      } else {
        const body = { url };
        if (sha256) body.sha256 = sha256;
        const job = await api("POST", "/api/media/fetch", body);
        this.fetchJob = job.job;
        this.onJob(job);
      }
    } catch (err) {
      this.toast(`Media: ${err.message}`);
    }
    this.refresh();
  }

  /** A WebSocket "job" event: the progress of a URL download. */
  onJob(job) {
    if (job.kind !== "media_fetch") return;
    const name = (job.detail && job.detail.name) || "image";
    if (job.status === "running") {
      const total = job.total ? ` of ${human(job.total)}` : "";
      this.showProgress(`Downloading ${name}: ${human(job.completed)}${total}`, job.completed, job.total);
    } else {
      this.hideProgress(job.status === "done" ? `Downloaded ${name}` : `Download ${job.status}: ${job.error || ""}`);
      this.refresh();
    }
  }

  async attach(image, kind, readOnly) {
    try {
      this.renderDrive(await api("POST", "/api/media/attach", { image, kind, read_only: readOnly }));
    } catch (err) {
      this.toast(`Attach: ${err.message}`);
    }
    this.refresh();
  }

  async detach() {
    try {
      this.renderDrive(await api("POST", "/api/media/detach", {}));
    } catch (err) {
      this.toast(`Detach: ${err.message}`);
    }
    this.refresh();
  }

  async remove(name) {
    if (!window.confirm(`Delete ${name} from the appliance?`)) return;
    try {
      await api("DELETE", `/api/media/images/${encodeURIComponent(name)}`);
    } catch (err) {
      this.toast(`Delete: ${err.message}`);
    }
    this.refresh();
  }
}
