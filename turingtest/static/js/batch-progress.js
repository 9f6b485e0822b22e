// Live progress bars in the admin (generation batches, imports).
// Every <progress data-progress-url> polls its JSON endpoint until the job is finished.
// Loaded as a static file: the site's Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";
  var FINISHED = { succeeded: true, failed: true, cancelled: true };
  var INTERVAL_MS = 2000;

  function poll(bar) {
    var url = bar.getAttribute("data-progress-url");
    var label = document.querySelector('[data-progress-label="' + url + '"]');
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (p) {
        bar.max = Math.max(p.total, 1);
        bar.value = p.done;
        if (label) {
          var text = p.done + " / " + p.total + " · " + (p.outcome || p.status);
          if (p.images_per_second) text += " · " + p.images_per_second + " img/s";
          if (p.error) text += " · " + p.error;
          label.textContent = text;
        }
        bar.setAttribute("data-status", p.status);
        if (!FINISHED[p.status]) window.setTimeout(function () { poll(bar); }, INTERVAL_MS);
      })
      .catch(function () {
        window.setTimeout(function () { poll(bar); }, INTERVAL_MS * 3);
      });
  }

  function start() {
    var bars = document.querySelectorAll("progress[data-progress-url]");
    for (var i = 0; i < bars.length; i++) poll(bars[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
