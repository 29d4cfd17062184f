/* Without JavaScript the page shows every card and no filter (the form stays hidden). */
(function () {
  var form = document.getElementById("filters");
  var section = document.getElementById("failures");
  if (!form || !section) { return; }
  var cards = Array.prototype.slice.call(section.querySelectorAll(".failure"));
  var blocks = Array.prototype.slice.call(section.querySelectorAll(".group, .part"));
  var count = document.getElementById("filter-count");
  function matches(card) {
    var b = form.elements.backend.value, v = form.elements.verdict.value, r = form.elements.rule.value;
    return (!b || card.getAttribute("data-backend") === b) && (!v || card.getAttribute("data-verdict") === v) &&
      (!r || (" " + card.getAttribute("data-rules") + " ").indexOf(" " + r + " ") >= 0);
  }
  function apply() {
    var shown = 0;
    cards.forEach(function (card) { var ok = matches(card); card.hidden = !ok; shown += ok ? 1 : 0; });
    /* a group or part with no card left is hidden too, heading and "more" line included */
    blocks.forEach(function (block) { block.hidden = !block.querySelector(".failure:not([hidden])"); });
    count.textContent = shown === cards.length ? "" : shown + " of " + cards.length + " cards";
  }
  form.addEventListener("change", apply);
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  /* a backend's jump link narrows the list to that backend, then jumps */
  Array.prototype.forEach.call(section.querySelectorAll("a[data-backend]"), function (link) {
    link.addEventListener("click", function () {
      form.elements.backend.value = link.getAttribute("data-backend");
      form.elements.verdict.value = "";
      form.elements.rule.value = "";
      apply();
    });
  });
  form.hidden = false;
  apply();
})();
/* open the collapsed case list a matrix cell links to */
(function () {
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; el.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
