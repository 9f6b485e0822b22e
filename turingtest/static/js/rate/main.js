/*
 * The rating page's entry point: one image at a time, keyboard-first, driven by the rater
 * JSON API (turingtest/studies/API.md). Loaded from templates/studies/rate.html as a module
 * (the site's CSP allows scripts from 'self' only; configuration comes in data-* attributes).
 *
 * The parts, each owning its own state:
 * - answers.js: the answer queue (localStorage, retries with backoff, the client_key);
 * - view.js: what is on screen and the answer being built (diagnosis.js: its combobox);
 * - flow.js: the last state the server sent, and what to do after each answer;
 * - keys.js: the keyboard map.
 */

import { createAnswerQueue } from "./answers.js";
import { createFlow } from "./flow.js";
import { bindKeys } from "./keys.js";
import { createView, findElements } from "./view.js";

function main(root) {
  const ui = findElements();
  const view = createView({
    ui: ui,
    root: root,
    loginUrl: root.dataset.loginUrl || "/accounts/login/",
    // Only called after start(), once the flow below exists.
    onImageFailed: (item, attempt) => flow.retryImage(item, attempt),
  });
  const queue = createAnswerQueue({
    studyId: root.dataset.studyId,
    stateUrl: root.dataset.stateUrl,
    answersUrl: root.dataset.answersUrl,
    csrf: root.dataset.csrf || "",
    say: view.setStatus,
  });
  const flow = createFlow({ queue, view });

  ui.real.addEventListener("click", () => flow.choose(false));
  ui.synthetic.addEventListener("click", () => flow.choose(true));
  ui.zoomButton.addEventListener("click", () => view.toggleZoom());
  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    flow.submit();
  });
  ui.continueButton.addEventListener("click", () => flow.continueAfterFeedback());
  ui.back.addEventListener("click", () => flow.toggleBack());
  bindKeys({ ui, view, flow });

  flow.start().catch((e) => view.fail("Something went wrong", String(e && e.message ? e.message : e)));
}

const root = document.getElementById("rate-app");
if (root) main(root);
