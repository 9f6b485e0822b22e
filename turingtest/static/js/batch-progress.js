// Live progress in the admin. pollProgress(url, render) polls a job's progress JSON until the job
// is finished, backing off after an error; every <progress data-progress-url> (generation batches,
// imports, mask jobs) is drawn by it here, and training-progress.js draws its page through it too.
// Loaded as a static file: the site's Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";
  var FINISHED = { succeeded: true, failed: true, cancelled: true };

  function pollProgress(url, render, intervalMs) {
    var interval = intervalMs || 2000;
    function again(ms) { window.setTimeout(poll, ms); }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (p) {
          render(p);
          if (!FINISHED[p.status]) again(interval);
        })
        .catch(function () { again(interval * 3); });
    }
    poll();
  }
  window.dermganPollProgress = pollProgress;

  function drawBar(bar) {
    var url = bar.getAttribute("data-progress-url");
    var label = document.querySelector('[data-progress-label="' + url + '"]');
    pollProgress(url, function (p) {
      bar.max = Math.max(p.total, 1);
      bar.value = p.done;
      if (label) {
        var text = p.done + " / " + p.total + " · " + (p.outcome || p.status);
        if (p.images_per_second) text += " · " + p.images_per_second + " img/s";
        if (p.error) text += " · " + p.error;
        label.textContent = text;
      }
      bar.setAttribute("data-status", p.status);
    });
  }

  function start() {
    var bars = document.querySelectorAll("progress[data-progress-url]");
    for (var i = 0; i < bars.length; i++) drawBar(bars[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
