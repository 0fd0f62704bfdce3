// loopml UI: confirmations, lineage expansion in place, live sections. No libraries; pages work without it.
(function () {
  "use strict";

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { ev.preventDefault(); }
  });

  // Lineage: clicking a node re-roots the graph there; fetch just the fragment and swap it.
  function loadLineage(href, push) {
    var view = document.getElementById("lineage-view");
    if (!view) { window.location.href = href; return; }
    var sep = href.indexOf("?") >= 0 ? "&" : "?";
    fetch(href + sep + "fragment=1", { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        view.innerHTML = html;
        if (push) { history.pushState({ lineage: href }, "", href); }
        var input = document.querySelector("input[name=object]");
        var key = new URL(href, window.location.href).searchParams.get("object");
        if (input && key) { input.value = key; }
      })
      .catch(function () { window.location.href = href; });
  }

  document.addEventListener("click", function (ev) {
    var link = ev.target.closest ? ev.target.closest("svg.lineage a") : null;
    if (!link || ev.ctrlKey || ev.metaKey || ev.shiftKey) { return; }
    ev.preventDefault();
    loadLineage(link.getAttribute("href"), true);
  });

  window.addEventListener("popstate", function (ev) {
    if (ev.state && ev.state.lineage) { loadLineage(ev.state.lineage, false); }
    else if (document.getElementById("lineage-view")) { window.location.reload(); }
  });

  // Live sections: <section id=... data-refresh="15"> re-reads itself from the same page.
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var seconds = parseInt(el.getAttribute("data-refresh"), 10) || 15;
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById(el.id);
          if (fresh) { el.innerHTML = fresh.innerHTML; }
        })
        .catch(function () { /* offline for a moment: keep what is shown */ });
    }, seconds * 1000);
  });
})();
