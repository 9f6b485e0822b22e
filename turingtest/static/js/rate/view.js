/*
 * The view: what the rater sees, drawn from the states the server sends.
 *
 * - One view at a time: loading, item, feedback (the item view with the tutorial feedback
 *   in place of the form), finished, error.
 * - response_ms is measured with performance.now() from the frame the image was painted to
 *   the rater's (last) real/synthetic choice.
 * - The next image is prefetched (new Image()) so the rater never waits, except in a study
 *   with an exposure limit: there the server sends each image once, when it is shown (a
 *   prefetched image would start its clock early and could not be fetched again), and an item
 *   whose image was already sent (``image_available: false``, e.g. after a reload) is answered
 *   from memory without asking for the image again.
 *
 * This module owns the view's name, the item on screen with the answer being built, the
 * exposure timer and the prefetched image. It never talks to the server: a failed image
 * load is handed to ``onImageFailed``, which decides whether to load it again.
 */

import { backoffMs } from "./answers.js";
import { createCombobox } from "./diagnosis.js";
import { createImageFit, isTouchOnly } from "./display.js";
import { showStudyKeys } from "./keys.js";

/** The page's elements, looked up once. */
export function findElements() {
  const $ = (id) => document.getElementById(id);
  return {
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
    keysSummary: $("keys-summary"),
    keysNote: $("keys-note"),
  };
}

/**
 * The view over ``ui`` (findElements()) inside ``root``.
 *
 * ``onImageFailed(item, attempt)`` is called, after a backoff, when the image of the item
 * still on screen did not load.
 */
export function createView({ ui, root, loginUrl, onImageFailed }) {
  let name = "loading";
  let current = null; // the item on screen and the answer being built
  let exposureTimer = null;
  let prefetched = null; // keeps the prefetching Image alive until it is used
  const expiredText = ui.exposureNote.textContent.trim();
  const imageFit = createImageFit({ stage: ui.stage, image: ui.image });
  let choiceNames = new Map(); // diagnosis code -> name, for the tutorial feedback

  const diagnosis = createCombobox({
    input: ui.diagnosisInput,
    list: ui.diagnosisList,
    announce: (text) => setStatus(text),
    leave: () => ui.itemHeading.focus(),
  });

  function setStatus(text, isWarning) {
    ui.formStatus.textContent = text;
    ui.formStatus.classList.toggle("warning", Boolean(isWarning));
    // While the loading view is up (first load, reload with a pending answer) say it there too.
    ui.loadingStatus.textContent = isWarning && name === "loading" ? text : "";
  }

  /** Shows one view; "feedback" is the item view with the tutorial feedback in place of the form. */
  function show(next) {
    name = next;
    const visible = next === "feedback" ? "item" : next;
    for (const key of Object.keys(ui.views)) ui.views[key].hidden = key !== visible;
    ui.form.hidden = next === "feedback";
    ui.feedbackPanel.hidden = next !== "feedback";
    ui.views.loading.setAttribute("aria-busy", String(next === "loading"));
    ui.keysNote.hidden = visible !== "item"; // "stop and resume later" means nothing on the end page
  }

  /** The error view; ``needsLogin`` turns its link into "log in and come back here". */
  function fail(title, text, needsLogin) {
    clearExposure();
    ui.errorHeading.textContent = title;
    ui.errorText.textContent = text;
    if (needsLogin) {
      ui.errorAction.textContent = "Log in again";
      ui.errorAction.href = loginUrl + "?next=" + encodeURIComponent(window.location.pathname);
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
    showStudyKeys(ui.keysHelp, study);
    // On a touch-only screen the shortcuts panel is hidden (rate.css): nothing to point to.
    if (isTouchOnly()) ui.form.removeAttribute("aria-describedby");
    if (study.answers_editable) {
      ui.keysNote.textContent = "Your place is saved after every answer, so you can stop and resume later on any device.";
    }
  }

  /** Draws state ``s``: the finished view, or its item with the next image prefetched. */
  function render(s) {
    applyStudy(s.study);
    renderProgress(s);
    if (s.finished || !s.item) {
      renderFinished(s);
      return;
    }
    diagnosis.setChoices(s.diagnosis_choices);
    choiceNames = new Map((s.diagnosis_choices || []).map((c) => [c.code, c.name]));
    showItem(s.item, null, s);
    if (!s.study.exposure_ms) prefetch(s.next_image_url);
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
    diagnosis.reset();
    ui.commentInput.value = "";
    ui.submit.disabled = true;
    setStatus("");
  }

  /**
   * Shows ``item`` of state ``s``; ``previousAnswer`` (editable studies) pre-fills the form
   * to change that answer.
   */
  function showItem(item, previousAnswer, s) {
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
      exposureMs: s.study.exposure_ms,
    };
    ui.tutorialBadge.hidden = !current.isTutorial;
    ui.itemHeading.textContent = ui.progressText.textContent.replace(/^Tutorial example/, "Tutorial image");
    if (!current.isTutorial) ui.itemHeading.textContent = "Image " + ui.progressText.textContent;
    const canGoBack = Boolean(s.study.answers_editable && s.previous && !current.isTutorial);
    ui.back.hidden = !canGoBack;
    ui.backLabel.textContent = current.editing ? "Back to the current image" : "Change previous answer";
    if (current.editing) {
      ui.progressText.textContent = "Changing your previous answer";
      ui.itemHeading.textContent = "Previous image (changing the answer)";
    }
    ui.stage.classList.remove("expired");
    ui.stage.hidden = false;
    ui.exposureNote.hidden = true;
    ui.exposureNote.textContent = expiredText;
    ui.image.hidden = true;
    ui.imageWait.hidden = false;
    ui.imageWait.textContent = "Loading image…";
    show("item");
    ui.itemHeading.focus({ preventScroll: true });
    if (item.image_available === false) showAlreadyExposed(item.token);
    else loadImage(item, 0);
  }

  /** Exposure-limited item whose one showing is over: no image request, answer from memory. */
  function showAlreadyExposed(token) {
    ui.stage.classList.add("expired");
    ui.imageWait.hidden = true;
    ui.exposureNote.textContent = "This image was already shown once (time-limited study): give your answer.";
    ui.exposureNote.hidden = false;
    current.shownAt = window.performance.now();
    ui.real.disabled = false;
    ui.synthetic.disabled = false;
    if (current.prefill) applyPrefill(current.prefill);
    root.dataset.shownToken = token;
  }

  function showing(token) {
    return Boolean(current && current.token === token);
  }

  function loadImage(item, attempt) {
    const token = item.token;
    const img = ui.image;
    img.onload = () => {
      if (!showing(token)) return;
      const reveal = () => {
        if (!showing(token)) return;
        img.hidden = false;
        ui.imageWait.hidden = true;
        imageFit.fit();
        // The frame after the image is inserted is the one that paints it.
        window.requestAnimationFrame(() => {
          if (!showing(token)) return;
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
      if (!showing(token)) return;
      const delay = backoffMs(attempt);
      ui.imageWait.textContent = "The image did not load; trying again in " + Math.ceil(delay / 1000) + " s…";
      window.setTimeout(() => {
        if (showing(token)) onImageFailed(item, attempt + 1);
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
    diagnosis.prefill(answer.diagnosis);
    ui.commentInput.value = answer.comment || "";
    setStatus(
      isTouchOnly()
        ? "Your previous answer is filled in: change it and tap Submit, or tap “Back to the current image”."
        : "Your previous answer is filled in: change it and press Enter, or press B to go back."
    );
  }

  function startExposure(token) {
    const ms = current.exposureMs;
    if (!ms) return;
    exposureTimer = window.setTimeout(() => {
      if (!showing(token)) return;
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
    const wasZoomed = isZoomed();
    if (zoomed) imageFit.zoomIn();
    ui.stage.classList.toggle("zoomed", zoomed);
    if (zoomed && !wasZoomed) imageFit.centre();
    if (!zoomed && wasZoomed) imageFit.fit();
    document.body.classList.toggle("rate-zoomed", zoomed);
    ui.zoomButton.setAttribute("aria-pressed", String(zoomed));
    ui.zoomButton.setAttribute("aria-label", zoomed ? "Zoom out (Z or Esc)" : "Zoom the image (Z)");
  }

  function isZoomed() {
    return ui.stage.classList.contains("zoomed");
  }

  function renderFinished(s) {
    clearExposure();
    current = null;
    ui.finishedText.textContent = finishedText(s.progress);
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

  /** "All 24 images", counting each image once: repeats are extra answers, not extra images. */
  function finishedText(progress) {
    const total = progress.total;
    const images = typeof progress.images === "number" ? progress.images : total;
    let text = "You have rated all " + images + " image" + (images === 1 ? "" : "s");
    if (total > images) {
      const repeats = total - images;
      text +=
        " (" + total + " answers: " + repeats + (repeats === 1 ? " image was" : " images were") +
        " shown twice, to measure how consistent ratings are)";
    }
    return text + ". Your answers are saved.";
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

  /** The true diagnosis of a tutorial example, beside the rater's own (``chosen``: a code, "unsure" or null). */
  function diagnosisFeedback(truth, chosen) {
    if (!truth || typeof truth.name !== "string") return "";
    let text = " Diagnosis: " + truth.name + ".";
    if (chosen && chosen !== "unsure") {
      text += chosen === truth.code ? " Your diagnosis matches." : " You said " + (choiceNames.get(chosen) || chosen) + ".";
    }
    return text;
  }

  /** Tutorial feedback on the answer to ``token`` (whose diagnosis was ``chosen``). */
  function renderFeedback(feedback, token, chosen) {
    clearExposure();
    // After a reload the answered image is not on screen: show the feedback alone.
    ui.stage.hidden = !showing(token);
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
      text += diagnosisFeedback(feedback.diagnosis, chosen);
    }
    ui.feedbackText.textContent = text.trim() || "Answer recorded.";
    ui.feedbackHeading.textContent = feedback.correct === false ? "Tutorial: not quite" : "Tutorial feedback";
    show("feedback");
    ui.continueButton.focus();
  }

  // ------------------------------------------------------- the answer form

  /** Real (false) or synthetic (true); the last choice counts, and its time is response_ms. */
  function choose(saysSynthetic) {
    if (name !== "item" || !current || current.shownAt === null) return;
    current.saysSynthetic = saysSynthetic;
    current.choiceAt = window.performance.now();
    ui.real.setAttribute("aria-pressed", String(!saysSynthetic));
    ui.synthetic.setAttribute("aria-pressed", String(saysSynthetic));
    ui.submit.disabled = false;
    setStatus("Your answer: " + (saysSynthetic ? "Synthetic" : "Real") + (isTouchOnly() ? "." : ". Press Enter to submit."));
  }

  function setConfidence(n) {
    if (name !== "item" || ui.confidenceField.hidden) return;
    const input = ui.confidenceInputs.find((i) => i.value === String(n));
    if (input) input.checked = true;
  }

  function confidenceValue() {
    const input = ui.confidenceInputs.find((i) => i.checked);
    return input ? Number(input.value) : null;
  }

  /**
   * The form's answer to the item on screen, or null after telling the rater what is
   * missing (no choice yet, or a diagnosis that is not one of the choices).
   */
  function readAnswer() {
    if (current.saysSynthetic === null) {
      setStatus(isTouchOnly() ? "Choose Real or Synthetic first." : "Choose Real (R) or Synthetic (S) first.", true);
      return null;
    }
    let code;
    try {
      code = ui.diagnosisField.hidden ? null : diagnosis.value();
    } catch (e) {
      setStatus(e.message, true);
      ui.diagnosisInput.focus();
      return null;
    }
    return {
      token: current.token,
      says_synthetic: current.saysSynthetic,
      confidence: ui.confidenceField.hidden ? null : confidenceValue(),
      diagnosis: code,
      comment: ui.commentField.hidden ? "" : ui.commentInput.value.trim(),
      response_ms:
        current.shownAt !== null && current.choiceAt !== null
          ? Math.max(0, Math.round(current.choiceAt - current.shownAt))
          : null,
    };
  }

  /** The form while its answer is sent (true) and once the server answered (false). */
  function setSending(on) {
    if (on) {
      ui.submit.disabled = true;
      ui.form.setAttribute("aria-busy", "true");
    } else {
      ui.form.removeAttribute("aria-busy");
    }
  }

  /** The server refused the answer to the item on screen: say why and let the rater fix it. */
  function refused(message) {
    setStatus(message, true);
    ui.submit.disabled = current.saysSynthetic === null;
  }

  return {
    name: () => name,
    hasItem: () => current !== null,
    isEditing: () => Boolean(current && current.editing),
    hasChoice: () => Boolean(current && current.saysSynthetic !== null),
    showing,
    setStatus,
    show,
    fail,
    render,
    showItem,
    /** Loads the image on screen again; ``s``, when given, is a fresher state for the same item. */
    reloadImage(item, attempt, s) {
      if (s) current.exposureMs = s.study.exposure_ms;
      loadImage(item, attempt);
    },
    renderFeedback,
    setZoom,
    isZoomed,
    toggleZoom: () => setZoom(!isZoomed()),
    choose,
    setConfidence,
    readAnswer,
    setSending,
    refused,
  };
}
