// The admin's lesion-mask editor: brush, eraser and polygon over the photo, undo/redo, shortcuts.
// An ES module loaded from a static file (the site's CSP forbids inline scripts and styles).
// The mask lives in a Uint8Array at the image's own pixel size (1 = lesion); the canvas only shows
// it. Pointer events make a mouse, a pen (its eraser end erases) and a finger draw alike.
// Accept posts the mask as a black/white PNG data URL; the server checks it before saving.

const MAX_UNDO = 100;
const FILL = [0, 190, 255, 110]; // lesion: translucent blue, so the photo shows through
const EDGE = [255, 230, 0, 255]; // outline: opaque yellow, visible on any skin
const CLOSE_DISTANCE_PX = 12; // screen pixels: clicking this near the first point closes a polygon

const root = document.getElementById("mask-editor");
const canvas = document.getElementById("mask-canvas");
const context = canvas.getContext("2d");
const sizeInput = document.getElementById("mask-size");
const sizeValue = document.getElementById("mask-size-value");
const statusLine = document.getElementById("mask-status");
const form = document.getElementById("mask-form");
const width = canvas.width;
const height = canvas.height;

const state = {
  mask: new Uint8Array(width * height),
  undo: [],
  redo: [],
  tool: "brush",
  radius: Number(sizeInput.value),
  stroke: null, // {erase, last} while a pointer draws
  polygon: [], // vertices [x, y] in image pixels
  hover: null,
  visible: true,
  submitting: false,
};
root.dataset.ready = "false";

// --------------------------------------------------------------------------- drawing

function render() {
  const image = context.createImageData(width, height);
  const px = image.data;
  const m = state.mask;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!m[i]) continue;
      const edge =
        x === 0 || y === 0 || x === width - 1 || y === height - 1 ||
        !m[i - 1] || !m[i + 1] || !m[i - width] || !m[i + width];
      const colour = edge ? EDGE : FILL;
      px.set(colour, i * 4);
    }
  }
  context.putImageData(image, 0, 0);
  const scale = width / canvas.getBoundingClientRect().width || 1; // one screen pixel, in image pixels
  context.lineWidth = scale * 1.5;
  if (state.polygon.length) {
    context.strokeStyle = "rgb(255, 80, 200)";
    context.beginPath();
    state.polygon.forEach(([x, y], k) => (k ? context.lineTo(x, y) : context.moveTo(x, y)));
    if (state.hover) context.lineTo(state.hover[0], state.hover[1]);
    context.stroke();
    context.fillStyle = "rgb(255, 80, 200)";
    const [fx, fy] = state.polygon[0];
    context.fillRect(fx - 2 * scale, fy - 2 * scale, 4 * scale, 4 * scale);
  } else if (state.hover && state.tool !== "polygon") {
    context.strokeStyle = state.tool === "eraser" ? "rgb(255, 60, 60)" : "rgb(255, 255, 255)";
    context.beginPath();
    context.arc(state.hover[0], state.hover[1], state.radius, 0, 2 * Math.PI);
    context.stroke();
  }
}

let frame = 0;
function scheduleRender() {
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); });
}

function stamp(cx, cy, value) {
  const r = state.radius;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(width - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(height - 1, Math.ceil(cy + r));
  const r2 = r * r;
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r2) state.mask[y * width + x] = value;
    }
  }
}

function line(from, to, value) {
  const steps = Math.max(1, Math.ceil(Math.hypot(to[0] - from[0], to[1] - from[1]) / Math.max(0.5, state.radius / 2)));
  for (let k = 1; k <= steps; k++) {
    const t = k / steps;
    stamp(from[0] + (to[0] - from[0]) * t, from[1] + (to[1] - from[1]) * t, value);
  }
}

function fillPolygon(points) {
  // Even-odd scanline fill through pixel centres.
  const ys = points.map((p) => p[1]);
  const y0 = Math.max(0, Math.floor(Math.min(...ys))), y1 = Math.min(height - 1, Math.ceil(Math.max(...ys)));
  for (let y = y0; y <= y1; y++) {
    const sy = y + 0.5;
    const xs = [];
    for (let k = 0; k < points.length; k++) {
      const [ax, ay] = points[k];
      const [bx, by] = points[(k + 1) % points.length];
      if ((ay <= sy && by > sy) || (by <= sy && ay > sy)) xs.push(ax + ((sy - ay) / (by - ay)) * (bx - ax));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const from = Math.max(0, Math.ceil(xs[k] - 0.5)), to = Math.min(width - 1, Math.floor(xs[k + 1] - 0.5));
      for (let x = from; x <= to; x++) state.mask[y * width + x] = 1;
    }
  }
}

// --------------------------------------------------------------------------- history

function remember() {
  state.undo.push(state.mask.slice());
  if (state.undo.length > MAX_UNDO) state.undo.shift();
  state.redo = [];
  updateHistory();
}

function undo() {
  if (state.polygon.length) { state.polygon.pop(); scheduleRender(); return; }
  if (!state.undo.length) return;
  state.redo.push(state.mask);
  state.mask = state.undo.pop();
  updateHistory();
  scheduleRender();
}

function redo() {
  if (!state.redo.length) return;
  state.undo.push(state.mask);
  state.mask = state.redo.pop();
  updateHistory();
  scheduleRender();
}

function updateHistory() {
  root.dataset.undoDepth = String(state.undo.length);
  root.querySelector('[data-command="undo"]').disabled = !state.undo.length && !state.polygon.length;
  root.querySelector('[data-command="redo"]').disabled = !state.redo.length;
}

// --------------------------------------------------------------------------- tools

function setTool(tool) {
  closePolygon(false);
  state.tool = tool;
  for (const button of root.querySelectorAll("[data-tool]")) {
    button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
  }
  scheduleRender();
}

function setRadius(radius) {
  state.radius = Math.max(Number(sizeInput.min), Math.min(Number(sizeInput.max), Math.round(radius)));
  sizeInput.value = String(state.radius);
  sizeValue.textContent = String(state.radius);
  scheduleRender();
}

function closePolygon(fill = true) {
  if (fill && state.polygon.length >= 3) {
    remember();
    fillPolygon(state.polygon);
  }
  state.polygon = [];
  updateHistory();
  scheduleRender();
}

function toggleMask() {
  state.visible = !state.visible;
  canvas.classList.toggle("is-hidden", !state.visible);
  root.querySelector('[data-command="toggle"]').firstChild.textContent = state.visible ? "Hide mask " : "Show mask ";
}

function say(text) {
  statusLine.textContent = text;
}

// --------------------------------------------------------------------------- masks in and out

function loadMask(url) {
  return new Promise((resolve, reject) => {
    const picture = new Image();
    picture.onload = () => {
      const scratch = document.createElement("canvas");
      scratch.width = width;
      scratch.height = height;
      const c = scratch.getContext("2d");
      c.drawImage(picture, 0, 0, width, height);
      const px = c.getImageData(0, 0, width, height).data;
      const mask = new Uint8Array(width * height);
      for (let i = 0; i < mask.length; i++) mask[i] = px[i * 4] > 127 && px[i * 4 + 3] > 127 ? 1 : 0;
      resolve(mask);
    };
    picture.onerror = () => reject(new Error("the mask could not be decoded"));
    picture.src = url;
  });
}

function maskDataUrl() {
  const scratch = document.createElement("canvas");
  scratch.width = width;
  scratch.height = height;
  const c = scratch.getContext("2d");
  const image = c.createImageData(width, height);
  for (let i = 0; i < state.mask.length; i++) {
    const v = state.mask[i] ? 255 : 0;
    image.data.set([v, v, v, 255], i * 4);
  }
  c.putImageData(image, 0, 0);
  return scratch.toDataURL("image/png");
}

async function recomputeAutomatic() {
  say("Computing the automatic mask…");
  try {
    const response = await fetch(root.dataset.automaticUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const mask = await loadMask((await response.json()).mask);
    remember();
    state.mask = mask;
    scheduleRender();
    say("Automatic mask loaded: not saved until you accept (Ctrl+Z brings yours back).");
  } catch (error) {
    say("Could not compute the automatic mask: " + error.message);
  }
}

function accept() {
  if (state.submitting) return;
  if (state.polygon.length >= 3) { closePolygon(true); return; } // Enter first closes an open outline
  if (!state.mask.some((v) => v)) { say("The mask is empty: paint the lesion first."); return; }
  state.submitting = true;
  document.getElementById("mask-data").value = maskDataUrl();
  form.submit();
}

// --------------------------------------------------------------------------- pointer input

function toImage(event) {
  const rect = canvas.getBoundingClientRect();
  return [((event.clientX - rect.left) * width) / rect.width, ((event.clientY - rect.top) * height) / rect.height];
}

canvas.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  root.dataset.lastPointer = event.pointerType; // mouse, pen or touch (the browser test reads it)
  const point = toImage(event);
  if (state.tool === "polygon") {
    const first = state.polygon[0];
    const screenScale = canvas.getBoundingClientRect().width / width;
    if (first && state.polygon.length >= 3 && Math.hypot(point[0] - first[0], point[1] - first[1]) * screenScale <= CLOSE_DISTANCE_PX) {
      closePolygon(true);
    } else {
      state.polygon.push(point);
      updateHistory();
    }
    scheduleRender();
    return;
  }
  canvas.setPointerCapture(event.pointerId);
  // A pen's eraser end (button 5, bit 32) erases whatever tool is chosen.
  const erase = state.tool === "eraser" || (event.buttons & 32) !== 0;
  remember();
  state.stroke = { erase, last: point, id: event.pointerId };
  stamp(point[0], point[1], erase ? 0 : 1);
  scheduleRender();
});

canvas.addEventListener("pointermove", (event) => {
  state.hover = toImage(event);
  const stroke = state.stroke;
  if (stroke && event.pointerId === stroke.id) {
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {
      const point = toImage(e);
      line(stroke.last, point, stroke.erase ? 0 : 1);
      stroke.last = point;
    }
  }
  scheduleRender();
});

function endStroke(event) {
  if (state.stroke && event.pointerId === state.stroke.id) {
    state.stroke = null;
    root.dataset.strokes = String(Number(root.dataset.strokes || 0) + 1);
    scheduleRender();
  }
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);
canvas.addEventListener("pointerleave", () => { state.hover = null; scheduleRender(); });
canvas.addEventListener("dblclick", () => { if (state.tool === "polygon") closePolygon(true); });
canvas.addEventListener("contextmenu", (event) => event.preventDefault());

// --------------------------------------------------------------------------- buttons and keys

for (const button of root.querySelectorAll("[data-tool]")) {
  button.addEventListener("click", () => setTool(button.dataset.tool));
}
const commands = { undo, redo, toggle: toggleMask, automatic: recomputeAutomatic };
for (const button of root.querySelectorAll("[data-command]")) {
  button.addEventListener("click", () => commands[button.dataset.command]());
}
sizeInput.addEventListener("input", () => setRadius(Number(sizeInput.value)));
form.addEventListener("submit", (event) => { event.preventDefault(); accept(); });

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLElement && (target.isContentEditable || /^(TEXTAREA|SELECT)$/.test(target.tagName) ||
      (target.tagName === "INPUT" && target.type !== "range"))) return;
  // Enter or space on a focused button or link presses that one (keyboard users), not Accept.
  if ((event.key === "Enter" || event.key === " ") && target instanceof HTMLElement && /^(BUTTON|A)$/.test(target.tagName)) return;
  const key = event.key.toLowerCase();
  const ctrl = event.ctrlKey || event.metaKey;
  let handled = true;
  if (ctrl && key === "z") (event.shiftKey ? redo : undo)();
  else if (ctrl && key === "y") redo();
  else if (ctrl || event.altKey) handled = false;
  else if (key === "b") setTool("brush");
  else if (key === "e") setTool("eraser");
  else if (key === "p") setTool("polygon");
  else if (key === "h") toggleMask();
  else if (key === "[") setRadius(state.radius - Math.max(1, Math.round(state.radius * 0.2)));
  else if (key === "]") setRadius(state.radius + Math.max(1, Math.round(state.radius * 0.2)));
  else if (key === "enter") accept();
  else if (key === "escape") closePolygon(false);
  else if (key === "n") window.location.assign(root.dataset.nextUrl);
  else handled = false;
  if (handled) event.preventDefault();
});

// --------------------------------------------------------------------------- start

setRadius(Math.max(2, Math.round(width / 40)));
loadMask(canvas.dataset.maskUrl)
  .then((mask) => { state.mask = mask; })
  .catch((error) => say("Starting from an empty mask: " + error.message))
  .finally(() => {
    updateHistory();
    render();
    root.dataset.ready = "true";
  });
