/*
 * The rating page: one image at a time, keyboard-first, driven by the rater JSON API.
 *
 * Why it is built this way:
 * - Everything item-specific comes from GET state / POST answers; the HTML shell carries
 *   nothing about the items, so ground truth cannot leak through the page.
 * - An answer is never lost: before it is sent it is written to localStorage with its
 *   client_key (a UUID made once per answer); it is re-sent with the same key after a
 *   network error (exponential backoff) and after a reload, and removed only when the
 *   server acknowledged it. The server records one judgment per key and per presentation,
 *   so a retry or a double submit is harmless.
 * - response_ms is measured with performance.now() from the frame the image was painted
 *   to the rater's (last) real/synthetic choice.
 * - The next image is prefetched (new Image()) so the rater never waits.
 *
 * Keys (also listed on the page): R/1 real, S/2 synthetic, Shift+1..5 confidence,
 * D or / diagnosis search, C comment, Z zoom, Enter submit / continue, ? shortcuts, Esc leave a field.
 */
(function () {
  "use strict";

  const root = document.getElementById("rate-app");
  if (!root) return;

  const cfg = {
    studyId: root.dataset.studyId,
    stateUrl: root.dataset.stateUrl,
    answersUrl: root.dataset.answersUrl,
    csrf: root.dataset.csrf || "",
    loginUrl: root.dataset.loginUrl || "/accounts/login/",
  };
  const PENDING_KEY = "dermgan.pending." + cfg.studyId;
  const UNSURE = { code: "unsure", name: "Unsure" };
  const MAX_BACKOFF_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    progressText: $("progress-text"),
    progressBar: $("progress-bar"),
    views: {
      loading: $("view-loading"),
      item: $("view-item"),
      finished: $("view-finished"),
      error: $("view-error"),
    },
    itemHeading: $("item-heading"),
    tutorialBadge: $("tutorial-badge"),
    stage: $("stage"),
    zoomButton: $("zoom-button"),
    image: $("item-image"),
    imageWait: $("image-wait"),
    exposureNote: $("exposure-note"),
    form: $("answer-form"),
    real: $("choose-real"),
    synthetic: $("choose-synthetic"),
    confidenceField: $("confidence-field"),
    confidenceInputs: Array.from(document.querySelectorAll('input[name="confidence"]')),
    diagnosisField: $("diagnosis-field"),
    diagnosisInput: $("diagnosis-input"),
    diagnosisList: $("diagnosis-list"),
    commentField: $("comment-field"),
    commentInput: $("comment-input"),
    submit: $("submit-button"),
    back: $("back-button"),
    backLabel: $("back-label"),
    formStatus: $("form-status"),
    loadingStatus: $("loading-status"),
    feedbackPanel: $("feedback-panel"),
    feedbackHeading: $("feedback-heading"),
    feedbackText: $("feedback-text"),
    continueButton: $("continue-button"),
    finishedHeading: $("finished-heading"),
    finishedText: $("finished-text"),
    score: $("score"),
    scoreList: $("score-list"),
    errorHeading: $("error-heading"),
    errorText: $("error-text"),
    errorAction: $("error-action"),
    keysHelp: $("keys-help"),
    keysNote: $("keys-note"),
  };

  let view = "loading";
  let state = null; // the last state the server sent
  let current = null; // the item on screen and the answer being built
  let inFlight = false; // an answer is being sent: no second submit
  let nextState = null; // after tutorial feedback, the state to continue with
  let exposureTimer = null;
  let prefetched = null; // keeps the prefetching Image alive until it is used
  let dx = { options: [], filtered: [], active: -1, selected: null };

  // ---------------------------------------------------------------- helpers

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    // randomUUID needs a secure context; getRandomValues works on plain http too.
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : cfg.csrf;
  }

  const storage = {
    load() {
      try {
        const raw = window.localStorage.getItem(PENDING_KEY);
        return raw ? JSON.parse(raw) : null;
      } catch (e) {
        return null;
      }
    },
    save(answer) {
      try {
        window.localStorage.setItem(PENDING_KEY, JSON.stringify(answer));
      } catch (e) {
        /* private mode: the in-memory copy still retries until acknowledged */
      }
    },
    clear() {
      try {
        window.localStorage.removeItem(PENDING_KEY);
      } catch (e) {
        /* nothing stored */
      }
    },
  };

  const sleep = (ms) => new Promise((resolve) => window.setTimeout(resolve, ms));

  class RetryableError extends Error {}

  /** One request; throws RetryableError for network trouble, returns {status, data} otherwise. */
  async function request(method, url, body) {
    const headers = { Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = csrfToken();
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await window.fetch(url, init);
    } catch (e) {
      throw new RetryableError("network error");
    }
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      throw new RetryableError("server busy (" + response.status + ")");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      if (response.ok) throw new RetryableError("incomplete response");
    }
    return { status: response.status, data: data };
  }

  /** Repeat a request until the server answers (any non-retryable status). */
  async function requestWithRetry(method, url, body, what) {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await request(method, url, body);
        if (attempt > 0) setStatus("");
        return result;
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
        setStatus(
          "Connection problem (" + e.message + "): " + what + " again in " + Math.ceil(delay / 1000) +
            " s. Nothing is lost.",
          true
        );
        await Promise.race([sleep(delay), onlineAgain()]);
      }
    }
  }

  function onlineAgain() {
    return new Promise((resolve) => window.addEventListener("online", resolve, { once: true }));
  }

  function setStatus(text, isWarning) {
    ui.formStatus.textContent = text;
    ui.formStatus.classList.toggle("warning", Boolean(isWarning));
    // While the loading view is up (first load, reload with a pending answer) say it there too.
    ui.loadingStatus.textContent = isWarning && view === "loading" ? text : "";
  }

  /** Shows one view; "feedback" is the item view with the tutorial feedback in place of the form. */
  function show(name) {
    view = name;
    const visible = name === "feedback" ? "item" : name;
    for (const key of Object.keys(ui.views)) ui.views[key].hidden = key !== visible;
    ui.form.hidden = name === "feedback";
    ui.feedbackPanel.hidden = name !== "feedback";
    ui.views.loading.setAttribute("aria-busy", String(name === "loading"));
  }

  /** The error view; ``needsLogin`` turns its link into "log in and come back here". */
  function fail(title, text, needsLogin) {
    clearExposure();
    ui.errorHeading.textContent = title;
    ui.errorText.textContent = text;
    if (needsLogin) {
      ui.errorAction.textContent = "Log in again";
      ui.errorAction.href = cfg.loginUrl + "?next=" + encodeURIComponent(window.location.pathname);
    } else {
      ui.errorAction.textContent = "Reload the page";
      ui.errorAction.href = window.location.pathname;
    }
    show("error");
    ui.errorHeading.focus();
  }

  // --------------------------------------------------------------- rendering

  function renderProgress(s) {
    const done = s.progress.done;
    const total = s.progress.total;
    ui.progressBar.max = Math.max(total, 1);
    ui.progressBar.value = done;
    if (s.finished || !s.item) {
      ui.progressText.textContent = done + " of " + total + " done";
    } else if (s.item.is_tutorial) {
      const tutorial = s.tutorial || { done: s.item.position - 1, total: total };
      ui.progressText.textContent = "Tutorial example " + (tutorial.done + 1) + " of " + tutorial.total;
      ui.progressBar.max = Math.max(tutorial.total, 1);
      ui.progressBar.value = tutorial.done;
    } else {
      ui.progressText.textContent = done + 1 + " of " + total;
    }
  }

  function applyStudy(study) {
    ui.confidenceField.hidden = !study.questions.confidence;
    ui.diagnosisField.hidden = !study.questions.diagnosis;
    ui.commentField.hidden = !study.questions.comment;
    if (study.answers_editable) {
      ui.keysNote.textContent = "Your place is saved after every answer, so you can stop and resume later on any device.";
    }
  }

  function render(s) {
    state = s;
    applyStudy(s.study);
    renderProgress(s);
    if (s.finished || !s.item) {
      renderFinished(s);
      return;
    }
    dx.options = (s.diagnosis_choices || []).concat([UNSURE]);
    showItem(s.item, null);
    prefetch(s.next_image_url);
  }

  /** Editable studies only: re-open the last answered item with its answer filled in, or come back. */
  function toggleBack() {
    if (view !== "item" || inFlight || !state || !state.previous || !state.study.answers_editable) return;
    if (current && current.editing) {
      render(state);
      return;
    }
    const prev = state.previous;
    showItem({ token: prev.token, image_url: prev.image_url, is_tutorial: false }, prev.answer);
  }

  function prefetch(url) {
    if (!url) return;
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    prefetched = { url: url, img: img };
  }

  function resetForm() {
    for (const b of [ui.real, ui.synthetic]) {
      b.setAttribute("aria-pressed", "false");
      b.disabled = true;
    }
    for (const input of ui.confidenceInputs) input.checked = false;
    ui.diagnosisInput.value = "";
    dx.selected = null;
    closeList();
    ui.commentInput.value = "";
    ui.submit.disabled = true;
    setStatus("");
  }

  /** Shows ``item``; ``previousAnswer`` (editable studies) pre-fills the form to change that answer. */
  function showItem(item, previousAnswer) {
    clearExposure();
    setZoom(false);
    resetForm();
    current = {
      token: item.token,
      isTutorial: Boolean(item.is_tutorial),
      saysSynthetic: null,
      shownAt: null,
      choiceAt: null,
      editing: Boolean(previousAnswer),
      prefill: previousAnswer || null,
    };
    ui.tutorialBadge.hidden = !current.isTutorial;
    ui.itemHeading.textContent = ui.progressText.textContent.replace(/^Tutorial example/, "Tutorial image");
    if (!current.isTutorial) ui.itemHeading.textContent = "Image " + ui.progressText.textContent;
    const canGoBack = Boolean(state.study.answers_editable && state.previous && !current.isTutorial);
    ui.back.hidden = !canGoBack;
    ui.backLabel.textContent = current.editing ? "Back to the current image" : "Change previous answer";
    if (current.editing) {
      ui.progressText.textContent = "Changing your previous answer";
      ui.itemHeading.textContent = "Previous image (changing the answer)";
    }
    ui.stage.classList.remove("expired");
    ui.stage.hidden = false;
    ui.exposureNote.hidden = true;
    ui.image.hidden = true;
    ui.imageWait.hidden = false;
    ui.imageWait.textContent = "Loading image…";
    show("item");
    ui.itemHeading.focus({ preventScroll: true });
    loadImage(item, 0);
  }

  function loadImage(item, attempt) {
    const token = item.token;
    const img = ui.image;
    img.onload = () => {
      if (!current || current.token !== token) return;
      const reveal = () => {
        if (!current || current.token !== token) return;
        img.hidden = false;
        ui.imageWait.hidden = true;
        // The frame after the image is inserted is the one that paints it.
        window.requestAnimationFrame(() => {
          if (!current || current.token !== token) return;
          current.shownAt = window.performance.now();
          ui.real.disabled = false;
          ui.synthetic.disabled = false;
          if (current.prefill) applyPrefill(current.prefill);
          startExposure(token);
          root.dataset.shownToken = token; // lets tests wait for the painted image
        });
      };
      if (typeof img.decode === "function") img.decode().then(reveal, reveal);
      else reveal();
    };
    img.onerror = () => {
      if (!current || current.token !== token) return;
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
      ui.imageWait.textContent = "The image did not load; trying again in " + Math.ceil(delay / 1000) + " s…";
      window.setTimeout(() => {
        if (current && current.token === token) retryImage(item, attempt + 1);
      }, delay);
    };
    if (attempt) img.removeAttribute("src"); // the same URL again would not fire a new load
    img.src = item.image_url;
  }

  function applyPrefill(answer) {
    current.saysSynthetic = answer.says_synthetic;
    ui.real.setAttribute("aria-pressed", String(!answer.says_synthetic));
    ui.synthetic.setAttribute("aria-pressed", String(answer.says_synthetic));
    ui.submit.disabled = false;
    if (answer.confidence) setConfidence(answer.confidence);
    const option = dx.options.find((o) => o.code === answer.diagnosis);
    if (option) {
      dx.selected = option;
      ui.diagnosisInput.value = option.name;
    }
    ui.commentInput.value = answer.comment || "";
    setStatus("Your previous answer is filled in: change it and press Enter, or press B to go back.");
  }

  /** After a failed image load, ask the server first: the item may have been answered in another tab. */
  async function retryImage(item, attempt) {
    if (current && current.editing) {
      loadImage(item, attempt);
      return;
    }
    const { status, data } = await requestWithRetry("GET", cfg.stateUrl, undefined, "loading");
    if (!current || current.token !== item.token) return;
    if (status === 200 && data && data.item && data.item.token === item.token) {
      state = data;
      loadImage(item, attempt);
    } else if (status === 200 && data) {
      render(data);
    } else {
      await loadState();
    }
  }

  function startExposure(token) {
    const ms = state.study.exposure_ms;
    if (!ms) return;
    exposureTimer = window.setTimeout(() => {
      if (!current || current.token !== token) return;
      setZoom(false);
      ui.stage.classList.add("expired");
      ui.image.hidden = true;
      ui.exposureNote.hidden = false;
    }, ms);
  }

  function clearExposure() {
    if (exposureTimer) window.clearTimeout(exposureTimer);
    exposureTimer = null;
  }

  function setZoom(on) {
    const zoomed = Boolean(on) && !ui.stage.classList.contains("expired") && !ui.image.hidden;
    ui.stage.classList.toggle("zoomed", zoomed);
    document.body.classList.toggle("rate-zoomed", zoomed);
    ui.zoomButton.setAttribute("aria-pressed", String(zoomed));
    ui.zoomButton.setAttribute("aria-label", zoomed ? "Zoom out (Z or Esc)" : "Zoom the image (Z)");
  }

  function renderFinished(s) {
    clearExposure();
    current = null;
    const total = s.progress.total;
    ui.finishedText.textContent =
      "You have rated all " + total + " images. Your answers are saved; you can close this page.";
    ui.score.hidden = true;
    ui.scoreList.replaceChildren();
    if (s.study.show_score && s.score) {
      for (const [label, value] of scoreRows(s.score)) {
        const dt = document.createElement("dt");
        dt.textContent = label;
        const dd = document.createElement("dd");
        dd.textContent = value;
        ui.scoreList.append(dt, dd);
      }
      ui.score.hidden = ui.scoreList.children.length === 0;
    }
    show("finished");
    ui.finishedHeading.focus();
  }

  /** Turns the server's score object into label/value rows without assuming more than its shape. */
  function scoreRows(score) {
    const rows = [];
    const correct = score.n_correct ?? score.correct;
    const n = score.n_answered ?? score.n ?? score.total;
    if (typeof correct === "number" && typeof n === "number") rows.push(["Correct", correct + " of " + n]);
    if (typeof score.accuracy === "number") rows.push(["Accuracy", Math.round(score.accuracy * 100) + "%"]);
    if (rows.length === 0) {
      for (const [key, value] of Object.entries(score)) {
        if (value === null || typeof value === "object") continue;
        rows.push([key.replace(/_/g, " "), typeof value === "number" && value < 1 && value > 0 ? Math.round(value * 100) + "%" : String(value)]);
      }
    }
    return rows;
  }

  function renderFeedback(feedback, next, token) {
    clearExposure();
    nextState = next;
    // After a reload the answered image is not on screen: show the feedback alone.
    ui.stage.hidden = !current || current.token !== token;
    let text;
    if (typeof feedback.message === "string" && feedback.message) {
      text = feedback.message;
    } else {
      const label = typeof feedback.truth === "string" ? feedback.truth : feedback.kind;
      const truth =
        typeof feedback.is_synthetic === "boolean"
          ? feedback.is_synthetic
          : typeof label === "string"
            ? label === "synthetic"
            : null;
      const correct = typeof feedback.correct === "boolean" ? feedback.correct : null;
      text = correct === null ? "" : correct ? "Correct. " : "Not quite. ";
      if (truth !== null) text += "This image is " + (truth ? "synthetic (made by DermGAN)." : "real.");
      if (feedback.condition_name || feedback.diagnosis_name) {
        text += " Diagnosis: " + (feedback.condition_name || feedback.diagnosis_name) + ".";
      }
    }
    ui.feedbackText.textContent = text.trim() || "Answer recorded.";
    ui.feedbackHeading.textContent = feedback.correct === false ? "Tutorial: not quite" : "Tutorial feedback";
    show("feedback");
    ui.continueButton.focus();
  }

  function continueAfterFeedback() {
    if (view !== "feedback" || !nextState) return;
    const s = nextState;
    nextState = null;
    render(s);
  }

  // ----------------------------------------------------------------- answers

  function choose(saysSynthetic) {
    if (view !== "item" || !current || current.shownAt === null || inFlight) return;
    current.saysSynthetic = saysSynthetic;
    current.choiceAt = window.performance.now();
    ui.real.setAttribute("aria-pressed", String(!saysSynthetic));
    ui.synthetic.setAttribute("aria-pressed", String(saysSynthetic));
    ui.submit.disabled = false;
    setStatus("Your answer: " + (saysSynthetic ? "Synthetic" : "Real") + ". Press Enter to submit.");
  }

  function setConfidence(n) {
    if (view !== "item" || ui.confidenceField.hidden || inFlight) return;
    const input = ui.confidenceInputs.find((i) => i.value === String(n));
    if (input) input.checked = true;
  }

  function confidenceValue() {
    const input = ui.confidenceInputs.find((i) => i.checked);
    return input ? Number(input.value) : null;
  }

  /** The diagnosis code, null when none given; throws with a message the rater can act on. */
  function diagnosisValue() {
    if (ui.diagnosisField.hidden) return null;
    const text = ui.diagnosisInput.value.trim().toLowerCase();
    if (!text) return null;
    if (dx.selected && dx.selected.name.toLowerCase() === text) return dx.selected.code;
    const exact = dx.options.find((o) => o.code.toLowerCase() === text || o.name.toLowerCase() === text);
    if (exact) return exact.code;
    throw new Error("Pick a diagnosis from the list (or clear the field): “" + ui.diagnosisInput.value.trim() + "” is not one of them.");
  }

  async function submit() {
    if (view !== "item" || !current || inFlight) return;
    if (current.saysSynthetic === null) {
      setStatus("Choose Real (R) or Synthetic (S) first.", true);
      return;
    }
    let diagnosis;
    try {
      diagnosis = diagnosisValue();
    } catch (e) {
      setStatus(e.message, true);
      ui.diagnosisInput.focus();
      return;
    }
    inFlight = true;
    ui.submit.disabled = true;
    ui.form.setAttribute("aria-busy", "true");
    const answer = {
      token: current.token,
      client_key: uuid4(),
      says_synthetic: current.saysSynthetic,
      confidence: ui.confidenceField.hidden ? null : confidenceValue(),
      diagnosis: diagnosis,
      comment: ui.commentField.hidden ? "" : ui.commentInput.value.trim(),
      response_ms:
        current.shownAt !== null && current.choiceAt !== null
          ? Math.max(0, Math.round(current.choiceAt - current.shownAt))
          : null,
    };
    storage.save(answer);
    setStatus("Saving…");
    await send(answer);
  }

  /** Sends a stored answer until the server acknowledges or refuses it, then moves on. */
  async function send(answer) {
    inFlight = true;
    let result;
    try {
      result = await requestWithRetry("POST", cfg.answersUrl, answer, "saving your answer");
    } finally {
      inFlight = false;
      ui.form.removeAttribute("aria-busy");
    }
    const { status, data } = result;
    if (status === 200 || status === 201) {
      storage.clear();
      if (data && data.feedback) renderFeedback(data.feedback, data.state, answer.token);
      else if (data && data.state) render(data.state);
      else await loadState();
      return;
    }
    if (status === 401 || status === 403) {
      // Not refused for what it says but for who sends it (session ended, consent missing):
      // the answer stays stored and is sent when the rater comes back logged in.
      fail(
        "Please log in again",
        ((data && data.detail) || "Your session has ended.") + " Your last answer is kept and will be sent when you return.",
        true
      );
      return;
    }
    // Refused: this answer can never be recorded as it is, so it is not kept.
    storage.clear();
    if (status === 400) {
      if (view === "item" && current && current.token === answer.token) {
        setStatus(describeErrors(data), true);
        ui.submit.disabled = current.saysSynthetic === null;
      } else {
        await loadState("Your last answer was not accepted (" + describeErrors(data) + ") Please answer again.");
      }
      return;
    }
    if (status === 409) {
      // Out of order: the server has moved on (e.g. answered on another device).
      await loadState("This image was already answered; here is your next one.");
      return;
    }
    if (status === 410) {
      fail("This study is closed", "No more answers can be given. Thank you for taking part.");
      return;
    }
    fail("Could not save the answer", (data && data.detail) || "The server answered " + status + ".");
  }

  function describeErrors(data) {
    if (!data || typeof data !== "object") return "The answer was not accepted.";
    if (typeof data.detail === "string") return data.detail;
    const parts = [];
    for (const [field, msgs] of Object.entries(data)) {
      parts.push(field.replace(/_/g, " ") + ": " + (Array.isArray(msgs) ? msgs.join(" ") : String(msgs)));
    }
    return parts.join(" ") || "The answer was not accepted.";
  }

  async function loadState(message) {
    show("loading");
    const { status, data } = await requestWithRetry("GET", cfg.stateUrl, undefined, "loading");
    if (status === 200 && data) {
      render(data);
      if (message) setStatus(message, true);
      return;
    }
    if (status === 410) {
      fail("This study is closed", "Thank you for taking part.");
      return;
    }
    if (status === 401 || status === 403) {
      fail("Please log in", (data && data.detail) || "This study is not open to you.", true);
      return;
    }
    fail("Could not load the study", (data && data.detail) || "The server answered " + status + ".");
  }

  // --------------------------------------------------------------- diagnosis

  function renderList() {
    const list = ui.diagnosisList;
    list.replaceChildren();
    dx.filtered.forEach((option, i) => {
      const li = document.createElement("li");
      li.id = "dx-option-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === dx.active));
      li.dataset.code = option.code;
      li.textContent = option.code === UNSURE.code ? option.name : option.name + " (" + option.code + ")";
      if (i === dx.active) li.classList.add("active");
      li.addEventListener("mousedown", (e) => e.preventDefault()); // keep focus in the input
      li.addEventListener("click", () => pickOption(option));
      list.append(li);
    });
    if (dx.filtered.length === 0) {
      const li = document.createElement("li");
      li.className = "no-match";
      li.textContent = "No match";
      list.append(li);
    }
    const open = !list.hidden;
    ui.diagnosisInput.setAttribute("aria-expanded", String(open));
    if (open && dx.active >= 0) {
      ui.diagnosisInput.setAttribute("aria-activedescendant", "dx-option-" + dx.active);
      const activeEl = document.getElementById("dx-option-" + dx.active);
      if (activeEl && typeof activeEl.scrollIntoView === "function") activeEl.scrollIntoView({ block: "nearest" });
    } else {
      ui.diagnosisInput.removeAttribute("aria-activedescendant");
    }
  }

  function filterOptions() {
    const q = ui.diagnosisInput.value.trim().toLowerCase();
    dx.filtered = q
      ? dx.options.filter((o) => o.name.toLowerCase().includes(q) || o.code.toLowerCase().startsWith(q))
      : dx.options.slice();
    dx.active = dx.filtered.length ? 0 : -1;
  }

  function openList() {
    filterOptions();
    ui.diagnosisList.hidden = false;
    renderList();
  }

  function closeList() {
    ui.diagnosisList.hidden = true;
    dx.active = -1;
    ui.diagnosisInput.setAttribute("aria-expanded", "false");
    ui.diagnosisInput.removeAttribute("aria-activedescendant");
  }

  function pickOption(option) {
    dx.selected = option;
    ui.diagnosisInput.value = option.name;
    closeList();
    setStatus("Diagnosis: " + option.name + ".");
  }

  ui.diagnosisInput.addEventListener("input", () => {
    dx.selected = null;
    openList();
  });
  ui.diagnosisInput.addEventListener("focus", () => {
    if (!dx.selected) openList();
  });
  ui.diagnosisInput.addEventListener("blur", () => closeList());
  ui.diagnosisInput.addEventListener("keydown", (e) => {
    const open = !ui.diagnosisList.hidden;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!open) {
        openList();
        return;
      }
      if (!dx.filtered.length) return;
      const step = e.key === "ArrowDown" ? 1 : -1;
      dx.active = (dx.active + step + dx.filtered.length) % dx.filtered.length;
      renderList();
    } else if (e.key === "Enter" && open && dx.active >= 0) {
      e.preventDefault();
      e.stopPropagation();
      pickOption(dx.filtered[dx.active]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      if (open) closeList();
      else ui.itemHeading.focus();
    }
  });

  // ------------------------------------------------------------------ events

  ui.real.addEventListener("click", () => choose(false));
  ui.synthetic.addEventListener("click", () => choose(true));
  for (const button of [ui.real, ui.synthetic]) {
    // Enter on the choice already made submits it, so "Enter submits" holds on these buttons too.
    button.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && button.getAttribute("aria-pressed") === "true") {
        e.preventDefault();
        e.stopPropagation();
        submit();
      }
    });
  }
  ui.zoomButton.addEventListener("click", () => setZoom(!ui.stage.classList.contains("zoomed")));
  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  ui.continueButton.addEventListener("click", () => continueAfterFeedback());
  ui.back.addEventListener("click", () => toggleBack());
  ui.commentInput.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      ui.itemHeading.focus();
    }
  });

  const TEXT_FIELDS = new Set([ui.diagnosisInput, ui.commentInput]);

  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const target = e.target;
    const typing = TEXT_FIELDS.has(target);

    if (e.key === "?" && !typing) {
      e.preventDefault();
      ui.keysHelp.open = !ui.keysHelp.open;
      return;
    }
    if (view === "feedback") {
      if (e.key === "Enter" && target !== ui.continueButton) {
        e.preventDefault();
        continueAfterFeedback();
      }
      return;
    }
    if (view !== "item") return;

    if (e.key === "Escape" && ui.stage.classList.contains("zoomed")) {
      e.preventDefault();
      setZoom(false);
      return;
    }
    if (e.key === "Enter") {
      // Buttons keep their own Enter (a focused "Real" button chooses Real); the
      // submit button and text fields fall through to the form's submit event.
      // The zoom button is the exception: a click on the image leaves focus there, and Enter
      // after choosing must still submit rather than zoom again.
      const isButton = target instanceof HTMLButtonElement || (target instanceof Element && target.tagName === "SUMMARY");
      const zoomWithChoice = target === ui.zoomButton && current && current.saysSynthetic !== null;
      if ((isButton && !zoomWithChoice) || typing) return;
      e.preventDefault();
      submit();
      return;
    }
    if (typing) return;

    // Shift+digit is read from e.code: e.key is "!" or "@"... and depends on the layout.
    const digit = /^(?:Digit|Numpad)([0-9])$/.exec(e.code);
    if (e.shiftKey && digit) {
      const n = Number(digit[1]);
      if (n >= 1 && n <= 5) {
        e.preventDefault();
        setConfidence(n);
      }
      return;
    }
    if (e.shiftKey) return;
    const key = e.key.toLowerCase();
    if (key === "r" || (digit && digit[1] === "1")) {
      e.preventDefault();
      choose(false);
    } else if (key === "s" || (digit && digit[1] === "2")) {
      e.preventDefault();
      choose(true);
    } else if ((key === "d" || key === "/") && !ui.diagnosisField.hidden) {
      e.preventDefault();
      ui.diagnosisInput.focus();
    } else if (key === "c" && !ui.commentField.hidden) {
      e.preventDefault();
      ui.commentInput.focus();
    } else if (key === "b" && !ui.back.hidden) {
      e.preventDefault();
      toggleBack();
    } else if (key === "z") {
      e.preventDefault();
      setZoom(!ui.stage.classList.contains("zoomed"));
    }
  });

  // ------------------------------------------------------------------- start

  async function start() {
    const pending = storage.load();
    if (pending && pending.token && pending.client_key) {
      // An answer from before a reload or a crash: send it first, with its original key.
      show("loading");
      setStatus("Saving your last answer…");
      await send(pending);
      return;
    }
    await loadState();
  }

  start().catch((e) => fail("Something went wrong", String(e && e.message ? e.message : e)));
})();
