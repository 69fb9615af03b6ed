// Console entry point: wires the WebSocket, the video transport, input capture and the UI.

import { api, ApiError } from "./api.js";
import { KeyboardInput } from "./input-keyboard.js";
import { MediaPanel } from "./media.js";
import { MouseInput, pictureRect } from "./input-mouse.js";
import { setupPanel } from "./menu.js";
import { OnScreenKeyboard } from "./osk.js";
import { PastePanel } from "./paste.js";
import { PowerControls } from "./power.js";
import { Settings } from "./settings.js";
import { SwitchMenu } from "./switch.js";
import { chooseTransport, TRANSPORTS } from "./transport.js";
import { Ui } from "./ui.js";
import { KvmSocket } from "./ws.js";

const $ = (id) => document.getElementById(id);
const capture = $("capture");
const settings = new Settings();
const socket = new KvmSocket();
const send = (message) => socket.send(message);
const ui = new Ui();
const switchMenu = new SwitchMenu($("switch-btn"), $("switch-menu"), (text) => ui.toast(text));

let transport = null;
let videoSize = null; // from state.video, used until the first frame tells the real size
let mouseMode = "absolute";

function picture() {
  if (!transport || !transport.element) return null;
  return pictureRect(transport.element, transport.pictureSize() || videoSize);
}

const keyboard = new KeyboardInput(capture, send, () => $("keys-btn").focus());
const mouse = new MouseInput(capture, picture, send, () => settings.values.sensitivity);

function applyState(state) {
  ui.render(state);
  switchMenu.render(state.switch);
  if (state.video && state.video.width && state.video.height) {
    videoSize = { width: state.video.width, height: state.video.height };
  }
  if (state.hid && state.hid.mouse_mode) {
    mouseMode = state.hid.mouse_mode;
    mouse.setMode(mouseMode);
  }
}

socket.addEventListener("open", () => {
  const reconnected = ui.everConnected;
  ui.setSocketOpen(true);
  // The service may have restarted: do not wait for the stream's own back-off.
  if (reconnected && transport && document.visibilityState !== "hidden") transport.restart();
});
socket.addEventListener("close", () => {
  keyboard.held.clear(); // the server released them when the connection closed
  ui.setRtt(null);
  ui.setSocketOpen(false);
});
socket.addEventListener("state", (e) => applyState(e.detail));
socket.addEventListener("switch", (e) => switchMenu.render(e.detail));
socket.addEventListener("rtt", (e) => ui.setRtt(e.detail));
const power = new PowerControls((text) => ui.toast(text));
socket.addEventListener("power", (e) => power.render(e.detail));
power.start();
ui.beforeLogout = () => {
  socket.stop();
  if (transport) transport.stop();
};
socket.addEventListener("error-event", (e) => {
  // The server refused one message (e.g. an unknown key code); the session carries on.
  console.warn("ipkvm: server refused a message:", e.detail.message);
});

// Toolbar: mouse mode toggle.
$("mouse-btn").addEventListener("click", async () => {
  const mode = mouseMode === "relative" ? "absolute" : "relative";
  try {
    const answer = await api("PUT", "/api/hid/mouse_mode", { mode });
    mouseMode = answer.mode || mode;
    mouse.setMode(mouseMode);
    if (ui.state) applyState({ ...ui.state, hid: { ...ui.state.hid, mouse_mode: mouseMode } });
  } catch (err) {
    ui.toast(`Could not change the mouse mode: ${err.message}`);
  }
});

// Panels.
const paste = new PastePanel(
  {
    text: $("paste-text"),
    layout: $("paste-layout"),
    pacing: $("paste-pacing"),
    progress: $("paste-progress"),
    result: $("paste-result"),
    untypable: $("paste-untypable"),
    send: $("paste-send"),
    cancel: $("paste-cancel"),
  },
  socket,
  settings,
);
let layoutsLoaded = false;
const rightPanels = []; // paste and settings share the top-right corner
setupPanel(
  $("paste-btn"),
  $("paste-panel"),
  () => {
    if (!layoutsLoaded) {
      layoutsLoaded = true;
      paste.loadLayouts();
    }
  },
  rightPanels,
);
new OnScreenKeyboard($("osk"), send);
setupPanel($("osk-btn"), $("osk-panel"));
setupPanel($("settings-btn"), $("settings-panel"), () => {}, rightPanels);
const media = new MediaPanel((text) => ui.toast(text));
setupPanel($("media-btn"), $("media-panel"), () => media.refresh(), rightPanels);
socket.addEventListener("media", (e) => {
  media.renderDrive(e.detail);
  if (!$("media-panel").hidden) media.refresh();
});
socket.addEventListener("job", (e) => media.onJob(e.detail));

// Stream and mouse settings.
function bindRange(id, key, format, onChange) {
  const input = $(id);
  const output = $(`${id}-out`);
  input.value = String(settings.values[key]);
  output.textContent = format(settings.values[key]);
  input.addEventListener("input", () => (output.textContent = format(Number(input.value))));
  input.addEventListener("change", () => {
    settings.update({ [key]: Number(input.value) });
    onChange();
  });
}
const streamOptions = () => ({ fps: settings.values.fps, quality: settings.values.quality });
bindRange("set-quality", "quality", String, () => transport && transport.configure(streamOptions()));
bindRange("set-fps", "fps", String, () => transport && transport.configure(streamOptions()));
bindRange("set-sens", "sensitivity", (v) => v.toFixed(1), () => {});
$("set-stats").checked = settings.values.showStats;
$("set-stats").addEventListener("change", () => {
  settings.update({ showStats: $("set-stats").checked });
  ui.showStats(settings.values.showStats);
});

// A hidden tab needs no picture: stop the stream (saves the appliance's CPU and the network)
// and pick it up again at once when the tab is shown.
document.addEventListener("visibilitychange", () => {
  if (!transport) return;
  if (document.visibilityState === "hidden") transport.suspend();
  else transport.restart();
});

// Which transport: ?transport=<id> in the URL wins (handy for tests and support), then the
// Stream panel's choice, then automatic.
function preferredTransport() {
  const fromUrl = new URLSearchParams(window.location.search).get("transport");
  return fromUrl || settings.values.transport;
}

async function startTransport(state) {
  if (transport) transport.stop();
  const Transport = await chooseTransport(state, preferredTransport());
  transport = new Transport({
    onStatus: (status) => ui.setTransportStatus(status),
    onFrame: () => {},
  });
  ui.setTransport(transport);
  transport.start($("video-box"), streamOptions());
}

const transportSelect = $("set-transport");
for (const T of TRANSPORTS) {
  const option = document.createElement("option");
  option.value = T.id;
  option.textContent = T.label;
  transportSelect.append(option);
}
transportSelect.value = TRANSPORTS.some((T) => T.id === settings.values.transport)
  ? settings.values.transport
  : "auto";
transportSelect.addEventListener("change", () => {
  settings.update({ transport: transportSelect.value });
  startTransport(ui.state);
});

async function start() {
  ui.init();
  ui.showStats(settings.values.showStats);
  let state = null;
  try {
    state = await api("GET", "/api/state");
    applyState(state);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // on the way to /login
    // Unreachable right now: the socket's reconnect loop will bring the state.
  }
  socket.start();
  await startTransport(state);
  capture.focus({ preventScroll: true });
}

start();
