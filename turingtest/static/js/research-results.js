// Live progress on the results dashboard: polls the progress JSON and updates the numbers.
// No inline script (strict CSP): the URL and interval come from data-* attributes.
(function () {
  "use strict";
  var root = document.getElementById("results");
  if (!root || !window.fetch) return;
  var url = root.getAttribute("data-progress-url");
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 10000;
  var first = null;

  function update(data) {
    Object.keys(data).forEach(function (key) {
      var el = root.querySelector('[data-progress="' + key + '"]');
      if (!el) return;
      if (el.tagName === "TIME" && data[key] !== null) {
        // A time: local-time.js formats it in the viewer's locale (else it stays as sent).
        if (el.getAttribute("datetime") === data[key]) return;
        el.setAttribute("datetime", data[key]);
        el.textContent = data[key];
        if (window.localTime) window.localTime.format(el);
        return;
      }
      el.textContent = data[key] === null ? "none yet" : String(data[key]);
    });
    if (first === null) first = data.n_judgments;
    var stale = root.querySelector("[data-progress-stale]");
    if (stale && data.n_judgments !== first) stale.hidden = false;
  }

  function poll() {
    if (document.hidden) return;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) update(data); })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }

  poll();
  window.setInterval(poll, every);
})();
