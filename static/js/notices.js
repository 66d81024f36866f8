// Staff notices on the boards and door displays ("Dr. Mehta's OPD starts at 11:00 today"), in
// English and, when the screen shows Hindi, Hindi beside it. Each is shown from its start to its
// end by this screen's clock too, so one goes at its time even between two server updates.
(function () {
  "use strict";
  var RECHECK_MS = 15000;

  function Notices(element, withHindi) {
    this.element = element;
    this.withHindi = withHindi;
    this.list = [];
    var self = this;
    setInterval(function () { self.render(); }, RECHECK_MS);
  }

  Notices.prototype.show = function (list) {
    var seen = {};
    this.list = (list || []).filter(function (n) {
      if (seen[n.notice_id]) { return false; }
      seen[n.notice_id] = true;
      return true;
    });
    this.render();
  };

  Notices.prototype.render = function () {
    var now = Date.now(), withHindi = this.withHindi;
    var texts = this.list.filter(function (n) {
      return Date.parse(n.starts_at) <= now && now < Date.parse(n.ends_at);
    }).map(function (n) { return n.text_en + (withHindi && n.text_hi ? " · " + n.text_hi : ""); });
    var text = texts.join("   •   ");
    if (this.element.textContent !== text) { this.element.textContent = text; }
    this.element.hidden = !text;
  };

  window.OpdNotices = Notices;
})();
