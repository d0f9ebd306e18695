/* Page behaviour that only makes sense with JavaScript: elements marked .js-only (say, "the list
   refreshes itself every 30 s", which is true only while htmx polls) are shown, and shown again
   after an htmx swap. Without JavaScript they stay hidden and the <noscript> text says what to do. */
(function () {
  "use strict";
  function reveal(root) {
    (root || document).querySelectorAll(".js-only[hidden]").forEach(function (el) { el.hidden = false; });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", function () { reveal(); }); } else { reveal(); }
  document.addEventListener("htmx:afterSettle", function () { reveal(); });
})();
