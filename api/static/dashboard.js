// Progressive enhancement only: every page works without it.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
    el.form.submit();
  }
});

// On a narrow screen the time charts scroll sideways: start at the newest days (the right end).
window.addEventListener("load", () => {
  for (const wrap of document.querySelectorAll(".chart-wrap")) {
    if (wrap.querySelector("svg.wide")) wrap.scrollLeft = wrap.scrollWidth;
  }
});
