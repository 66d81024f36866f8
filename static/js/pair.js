// A screen waiting to be paired checks every few seconds, then opens its board.
(function () {
  "use strict";
  var CHECK_EVERY_MS = 4000;
  function check() {
    fetch("/pair/status", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (s) { if (s.paired) { location.reload(); } })
      .catch(function () { /* offline for a moment: try again */ });
  }
  setInterval(check, CHECK_EVERY_MS);
})();
