// Live progress of a training job on its admin page: step, losses, time left and the latest sample grid.
// Polls the job's progress JSON until it is finished. A static file: the site's CSP forbids inline scripts.
(function () {
  "use strict";
  var FINISHED = { succeeded: true, failed: true, cancelled: true };
  var INTERVAL_MS = 3000;

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    var m = Math.round(seconds / 60);
    return m < 1 ? "under a minute left" : m < 120 ? m + " min left" : Math.round(m / 60) + " h left";
  }

  function poll(bar) {
    var url = bar.getAttribute("data-training-progress");
    var label = document.querySelector("[data-training-label]");
    var grid = document.querySelector("img[data-training-sample]");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (p) {
        bar.max = Math.max(p.total, 1);
        bar.value = p.done;
        // The status as the page first showed it ("Succeeded", not "succeeded").
        var parts = ["step " + p.done + " / " + p.total, p.status.charAt(0).toUpperCase() + p.status.slice(1)];
        Object.keys(p.losses).forEach(function (k) { parts.push(k.replace("loss_", "") + " " + p.losses[k]); });
        if (p.seconds_left !== null) parts.push(duration(p.seconds_left));
        if (p.error) parts.push(p.error);
        if (label) label.textContent = parts.join(" · ");
        if (grid && p.sample && grid.getAttribute("data-shown") !== p.sample) {
          grid.src = grid.getAttribute("data-training-sample") + "?v=" + encodeURIComponent(p.sample);
          grid.setAttribute("data-shown", p.sample);
          grid.hidden = false;
        }
        if (!FINISHED[p.status]) window.setTimeout(function () { poll(bar); }, INTERVAL_MS);
      })
      .catch(function () {
        window.setTimeout(function () { poll(bar); }, INTERVAL_MS * 3);
      });
  }

  function start() {
    var bars = document.querySelectorAll("progress[data-training-progress]");
    for (var i = 0; i < bars.length; i++) poll(bars[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
