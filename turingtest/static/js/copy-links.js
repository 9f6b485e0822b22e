/*
 * Copy buttons of the invitations page (no inline script: the CSP allows static files only).
 * ``data-copy`` holds the text to copy; ``data-copy-all`` a selector whose ``[data-link]``
 * elements are copied one per line. Without the Clipboard API (plain http) the text is
 * selected instead, so Ctrl+C still works.
 */

function selectText(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
}

async function copy(button, text, fallbackEl) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch (e) {
    if (fallbackEl) selectText(fallbackEl);
    button.textContent = "Selected: press Ctrl+C";
  }
  window.setTimeout(() => {
    button.textContent = label;
  }, 2000);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  if (button.dataset.copy !== undefined) {
    copy(button, button.dataset.copy, button.parentElement.querySelector("[data-link]"));
  } else if (button.dataset.copyAll) {
    const list = document.querySelector(button.dataset.copyAll);
    if (!list) return;
    const links = Array.from(list.querySelectorAll("[data-link]"), (el) => el.textContent.trim());
    copy(button, links.join("\n") + "\n", list);
  }
});
