/*
 * The keyboard map (also listed on the page): R/1 real, S/2 synthetic, Shift+1..5
 * confidence, D or / diagnosis search, C comment, Z zoom, Enter submit / continue,
 * B change the previous answer, ? shortcuts, Esc leave a field or the zoom.
 *
 * It holds no state: it reads the view's name and calls the view and the flow. The list on
 * the page shows only the keys of the questions the study asks (``showStudyKeys``).
 */

/**
 * Hides the shortcut list's rows for questions ``study`` does not ask: each row group in
 * rate.html names what it needs in ``data-needs`` (a question, or "editable").
 */
export function showStudyKeys(keysHelp, study) {
  const has = { ...study.questions, editable: Boolean(study.answers_editable) };
  for (const row of keysHelp.querySelectorAll("[data-needs]")) {
    row.hidden = !has[row.dataset.needs];
  }
}

/** "?" opens the list where the rater can see it (and closes it, back to the image). */
function toggleKeysHelp(ui) {
  const help = ui.keysHelp;
  help.open = !help.open;
  if (help.open) {
    help.scrollIntoView({ block: "nearest" });
    ui.keysSummary.focus({ preventScroll: true });
  } else {
    ui.itemHeading.focus({ preventScroll: true });
    ui.itemHeading.scrollIntoView({ block: "nearest" });
  }
}

/** Binds the keys on ``ui`` (view.js findElements()) to ``view`` and ``flow``. */
export function bindKeys({ ui, view, flow }) {
  for (const button of [ui.real, ui.synthetic]) {
    // Enter on the choice already made submits it, so "Enter submits" holds on these buttons too.
    button.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && button.getAttribute("aria-pressed") === "true") {
        e.preventDefault();
        e.stopPropagation();
        flow.submit();
      }
    });
  }
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
      toggleKeysHelp(ui);
      return;
    }
    if (view.name() === "feedback") {
      if (e.key === "Enter" && target !== ui.continueButton) {
        e.preventDefault();
        flow.continueAfterFeedback();
      }
      return;
    }
    if (view.name() !== "item") return;

    if (e.key === "Escape" && view.isZoomed()) {
      e.preventDefault();
      view.setZoom(false);
      return;
    }
    if (e.key === "Enter") {
      // Buttons keep their own Enter (a focused "Real" button chooses Real); the
      // submit button and text fields fall through to the form's submit event.
      // The zoom button is the exception: a click on the image leaves focus there, and Enter
      // after choosing must still submit rather than zoom again.
      const isButton = target instanceof HTMLButtonElement || (target instanceof Element && target.tagName === "SUMMARY");
      const zoomWithChoice = target === ui.zoomButton && view.hasChoice();
      if ((isButton && !zoomWithChoice) || typing) return;
      e.preventDefault();
      flow.submit();
      return;
    }
    if (typing) return;

    // Shift+digit is read from e.code: e.key is "!" or "@"... and depends on the layout.
    const digit = /^(?:Digit|Numpad)([0-9])$/.exec(e.code);
    if (e.shiftKey && digit) {
      const n = Number(digit[1]);
      if (n >= 1 && n <= 5) {
        e.preventDefault();
        flow.setConfidence(n);
      }
      return;
    }
    if (e.shiftKey) return;
    const key = e.key.toLowerCase();
    if (key === "r" || (digit && digit[1] === "1")) {
      e.preventDefault();
      flow.choose(false);
    } else if (key === "s" || (digit && digit[1] === "2")) {
      e.preventDefault();
      flow.choose(true);
    } else if ((key === "d" || key === "/") && !ui.diagnosisField.hidden) {
      e.preventDefault();
      ui.diagnosisInput.focus();
    } else if (key === "c" && !ui.commentField.hidden) {
      e.preventDefault();
      ui.commentInput.focus();
    } else if (key === "b" && !ui.back.hidden) {
      e.preventDefault();
      flow.toggleBack();
    } else if (key === "z") {
      e.preventDefault();
      view.toggleZoom();
    }
  });
}
