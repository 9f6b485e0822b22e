// Times in the viewer's own locale and time zone. The server writes
// <time data-local-time datetime="ISO 8601">1 Dec 2026, 15:30 UTC</time>; without JavaScript
// (or a date it cannot read) the UTC text stays. No inline script (strict CSP).
(function () {
  "use strict";

  function utcText(date) {
    return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function format(el) {
    var iso = el.getAttribute("datetime");
    if (!iso) return;
    var date = new Date(iso);
    if (isNaN(date.getTime())) return;
    var text;
    try {
      text = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    } catch (e) {
      text = utcText(date);
    }
    el.textContent = text;
    el.title = utcText(date);
  }

  function formatAll(root) {
    (root || document).querySelectorAll("time[data-local-time]").forEach(format);
  }

  window.localTime = { format: format, formatAll: formatAll };
  formatAll();
})();
