// hopscope UI: collapsing waterfall subtrees. The pages work without it; it only hides
// the rows under a span whose ▾ button is pressed.
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("ol.waterfall button.toggle");
  if (!button) return;
  event.preventDefault();
  event.stopPropagation();
  var item = button.closest("li");
  var depth = Number(item.dataset.depth);
  var collapse = button.getAttribute("aria-expanded") === "true";
  button.setAttribute("aria-expanded", collapse ? "false" : "true");
  button.setAttribute("aria-label", button.getAttribute("aria-label").replace(collapse ? "Collapse" : "Expand", collapse ? "Expand" : "Collapse"));
  var hiddenBelow = null; // depth of a collapsed descendant whose own subtree stays hidden
  for (var row = item.nextElementSibling; row; row = row.nextElementSibling) {
    var d = Number(row.dataset.depth);
    if (d <= depth) break;
    if (collapse) { row.classList.add("hidden"); continue; }
    if (hiddenBelow !== null && d > hiddenBelow) continue;
    hiddenBelow = null;
    row.classList.remove("hidden");
    var inner = row.querySelector("button.toggle");
    if (inner && inner.getAttribute("aria-expanded") === "false") hiddenBelow = d;
  }
});
