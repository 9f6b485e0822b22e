// Live progress of a training job on its admin page: step, losses, time left and the latest sample grid.
// Polls through batch-progress.js's pollProgress (loaded first). A static file: the CSP forbids inline scripts.
(function () {
  "use strict";

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    var m = Math.round(seconds / 60);
    return m < 1 ? "under a minute left" : m < 120 ? m + " min left" : Math.round(m / 60) + " h left";
  }

  function draw(bar) {
    var label = document.querySelector("[data-training-label]");
    var grid = document.querySelector("img[data-training-sample]");
    window.dermganPollProgress(bar.getAttribute("data-training-progress"), function (p) {
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
    }, 3000);
  }

  function start() {
    var bars = document.querySelectorAll("progress[data-training-progress]");
    for (var i = 0; i < bars.length; i++) draw(bars[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
