// The study design form's live preview (templates/studies/study_form.html): as the researcher
// types, post the form to the candidates endpoint and show what the library holds per
// condition × kind, the draw's problems and each field's error. No inline script (strict CSP):
// the endpoint comes from data-candidates-url. Without JavaScript the form still works.
(function () {
  "use strict";
  var form = document.getElementById("design-form");
  var panel = document.getElementById("pool-preview");
  if (!form || !panel || !window.fetch) return;
  var url = form.getAttribute("data-candidates-url");
  var timer = null;
  var latest = 0;

  function el(tag, text) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showErrors(errors) {
    form.querySelectorAll("[data-error-for]").forEach(function (p) {
      var name = p.getAttribute("data-error-for");
      if (name === "title" || name === "instructions" || name === "consent_text") return;
      var msgs = errors[name] || [];
      p.textContent = msgs.join(" ");
      p.parentElement.classList.toggle("has-error", msgs.length > 0);
    });
  }

  function cell(available, wanted) {
    var td = el("td", String(available));
    if (wanted !== null && wanted !== undefined) {
      td.appendChild(el("span", " (wanted " + wanted + ")"));
      if (available < wanted) td.className = "short";
    }
    return td;
  }

  function showStrata(rows, data) {
    var table = panel.querySelector("[data-preview-table]");
    var body = panel.querySelector("[data-preview-rows]");
    if (!rows) return; // a field is wrong: keep the last counts in view until it is fixed
    body.textContent = "";
    var byStratum = {};
    var order = [];
    rows.forEach(function (r) {
      var key = r.condition + "|" + (r.fitzpatrick === null ? "" : r.fitzpatrick);
      if (!byStratum[key]) { byStratum[key] = { condition: r.condition, fitzpatrick: r.fitzpatrick }; order.push(key); }
      byStratum[key][r.kind] = r;
    });
    order.forEach(function (key) {
      var s = byStratum[key];
      var tr = el("tr");
      tr.appendChild(el("th", s.condition)).setAttribute("scope", "row");
      tr.appendChild(el("td", s.fitzpatrick === null ? "any" : "type " + s.fitzpatrick));
      ["real", "synthetic"].forEach(function (kind) {
        var r = s[kind] || { available: 0, wanted: null };
        tr.appendChild(cell(r.available, r.wanted));
      });
      tr.setAttribute("data-stratum", key);
      body.appendChild(tr);
    });
    panel.querySelector('[data-preview-total="real"]').textContent = String(data.n_real);
    panel.querySelector('[data-preview-total="synthetic"]').textContent = String(data.n_synthetic);
    table.hidden = false;
  }

  function show(data) {
    showErrors(data.errors || {});
    var list = panel.querySelector("[data-preview-problems]");
    list.textContent = "";
    var fieldErrors = Object.keys(data.errors || {}).length;
    if (fieldErrors) list.appendChild(el("li", "Correct the marked fields to see what the library holds."));
    (data.problems || []).forEach(function (p) { list.appendChild(el("li", p)); });
    panel.querySelector("[data-preview-ok]").hidden = !data.ok;
    showStrata(data.strata, data);
    panel.setAttribute("data-state", data.ok ? "ok" : "problem");
  }

  function refresh() {
    var mine = ++latest;
    panel.setAttribute("aria-busy", "true");
    fetch(url, { method: "POST", body: new FormData(form), credentials: "same-origin",
                 headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && mine === latest) show(data); })
      .catch(function () { /* offline for a moment: the next change tries again */ })
      .then(function () { if (mine === latest) panel.removeAttribute("aria-busy"); });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 250);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
  refresh();
})();
