/*
 * The rater's turn: what the server said last, and what to do next.
 *
 * Everything item-specific comes from GET state / POST answers; the HTML shell carries
 * nothing about the items, so ground truth cannot leak through the page. This module owns
 * the last state the server sent and, after tutorial feedback, the state to continue with;
 * it asks the answer queue to talk to the server and the view to draw the result.
 */

import { newClientKey } from "./answers.js";

const PAUSED = "This study is paused";

/** Turns a refusal body ({detail} or {field: [messages]}) into one sentence. */
function describeErrors(data) {
  if (!data || typeof data !== "object") return "The answer was not accepted.";
  if (typeof data.detail === "string") return data.detail;
  const parts = [];
  for (const [field, msgs] of Object.entries(data)) {
    parts.push(field.replace(/_/g, " ") + ": " + (Array.isArray(msgs) ? msgs.join(" ") : String(msgs)));
  }
  return parts.join(" ") || "The answer was not accepted.";
}

/** The flow between ``queue`` (answers.js) and ``view`` (view.js). */
export function createFlow({ queue, view }) {
  let state = null; // the last state the server sent
  let nextState = null; // after tutorial feedback, the state to continue with
  let notQualified = false; // the last tutorial answer fell below the qualification threshold

  function render(s) {
    state = s;
    view.render(s);
  }

  /** Editable studies only: re-open the last answered item with its answer filled in, or come back. */
  function toggleBack() {
    if (view.name() !== "item" || queue.isSending() || !state || !state.previous || !state.study.answers_editable) {
      return;
    }
    if (view.isEditing()) {
      render(state);
      return;
    }
    const prev = state.previous;
    view.showItem(
      { token: prev.token, image_url: prev.image_url, image_available: prev.image_available, is_tutorial: false },
      prev.answer,
      state,
    );
  }

  function continueAfterFeedback() {
    if (view.name() === "feedback" && notQualified) {
      // Below the study's tutorial threshold: the page thanks the rater (no study item follows).
      window.location.reload();
      return;
    }
    if (view.name() !== "feedback" || !nextState) return;
    const s = nextState;
    nextState = null;
    render(s);
  }

  function choose(saysSynthetic) {
    if (queue.isSending()) return;
    view.choose(saysSynthetic);
  }

  function setConfidence(n) {
    if (queue.isSending()) return;
    view.setConfidence(n);
  }

  /** After a failed image load, ask the server first: the item may have been answered in another tab. */
  async function retryImage(item, attempt) {
    if (view.isEditing()) {
      view.reloadImage(item, attempt);
      return;
    }
    const { status, data } = await queue.fetchState();
    if (!view.showing(item.token)) return;
    if (status === 200 && data && data.item && data.item.token === item.token) {
      state = data;
      view.reloadImage(item, attempt, data);
    } else if (status === 200 && data) {
      render(data);
    } else {
      await loadState();
    }
  }

  async function submit() {
    if (view.name() !== "item" || !view.hasItem() || queue.isSending()) return;
    const fields = view.readAnswer();
    if (!fields) return;
    view.setSending(true);
    const answer = {
      token: fields.token,
      client_key: newClientKey(),
      says_synthetic: fields.says_synthetic,
      confidence: fields.confidence,
      diagnosis: fields.diagnosis,
      comment: fields.comment,
      response_ms: fields.response_ms,
    };
    queue.keep(answer);
    view.setStatus("Saving…");
    await send(answer);
  }

  /** Sends a stored answer until the server acknowledges or refuses it, then moves on. */
  async function send(answer) {
    let result;
    try {
      result = await queue.send(answer);
    } finally {
      view.setSending(false);
    }
    const { status, data } = result;
    if (status === 200 || status === 201) {
      if (data && data.feedback) {
        nextState = data.state;
        notQualified = Boolean(data.not_qualified);
        view.renderFeedback(data.feedback, answer.token, answer.diagnosis);
      } else if (data && data.state) render(data.state);
      else await loadState();
      return;
    }
    if (status === 401 || status === 403) {
      // Not refused for what it says but for who sends it (session ended, consent missing):
      // the queue keeps the answer, and it is sent when the rater comes back logged in.
      view.fail(
        "Please log in again",
        ((data && data.detail) || "Your session has ended.") + " Your last answer is kept and will be sent when you return.",
        true
      );
      return;
    }
    // Refused: this answer can never be recorded as it is, so the queue did not keep it.
    if (status === 400) {
      if (view.name() === "item" && view.showing(answer.token)) {
        view.refused(describeErrors(data));
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
    if (status === 410 && data && data.code === "not_qualified") {
      window.location.reload();
      return;
    }
    if (status === 410) {
      view.fail("This study is closed", "No more answers can be given. Thank you for taking part.");
      return;
    }
    if (status === 423) {
      view.fail(PAUSED, "Please come back later. Your last answer is kept and will be sent when the study resumes.");
      return;
    }
    view.fail("Could not save the answer", (data && data.detail) || "The server answered " + status + ".");
  }

  async function loadState(message) {
    view.show("loading");
    const { status, data } = await queue.fetchState();
    if (status === 200 && data) {
      render(data);
      if (message) view.setStatus(message, true);
      return;
    }
    if (status === 410 && data && data.code === "not_qualified") {
      window.location.reload();
      return;
    }
    if (status === 410) {
      view.fail("This study is closed", "Thank you for taking part.");
      return;
    }
    if (status === 423) {
      view.fail(PAUSED, (data && data.detail) || "Please come back later; nothing is lost.");
      return;
    }
    if (status === 401 || status === 403) {
      view.fail("Please log in", (data && data.detail) || "This study is not open to you.", true);
      return;
    }
    view.fail("Could not load the study", (data && data.detail) || "The server answered " + status + ".");
  }

  /** First a stored answer from before a reload or a crash (with its original key), then the state. */
  async function start() {
    const pending = queue.pending();
    if (pending) {
      view.show("loading");
      view.setStatus("Saving your last answer…");
      await send(pending);
      return;
    }
    await loadState();
  }

  return {
    retryImage,
    choose,
    setConfidence,
    submit,
    toggleBack,
    continueAfterFeedback,
    start,
  };
}
