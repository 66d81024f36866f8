// The waiting-hall TV board: cabins of the chosen departments, now serving, the next patients and
// the last calls; departments that do not fit the screen are shown in turns.
(function () {
  "use strict";
  var root = document.getElementById("board");
  var PAGE_MS = 1000 * Number(root.getAttribute("data-page-seconds") || 12);  // each page stays this long
  var DESKS_PER_SECTION = 6;      // two rows of three: a section always fits one page
  var BANNER_MIN_MS = 8000;       // a call stays on the banner at least this long, sound or not
  var LOST_AFTER_MS = 5000;       // this long without the server: say so over the whole screen
  var topics = root.getAttribute("data-topics").split(",").filter(Boolean);
  var languages = (root.getAttribute("data-languages") || "en").split(",").filter(Boolean);
  var container = document.getElementById("departments");
  var banner = document.getElementById("announcement");
  var notices = new window.OpdNotices(document.getElementById("notices"), languages.indexOf("hi") >= 0);
  var departments = {};     // dept_id -> latest department view
  var lastCall = {};        // doctor_id -> "token|call_count" last seen, to spot new calls
  var primed = {};          // topic -> seen: a topic's first snapshot shows state, it does not announce old calls
  var timeZone = root.getAttribute("data-timezone") || undefined;
  function $(id) { return document.getElementById(id); }
  function localTime(date) {
    // The hospital's own time, whatever the TV's clock setting.
    return date.toLocaleTimeString("en-IN", { hour: "2-digit", minute: "2-digit", timeZone: timeZone });
  }

  // The call banner: shown when the announcement starts, held at least BANNER_MIN_MS.
  var bannerShownAt = 0, bannerTimer = null;
  var announcer = new window.OpdAnnouncer(languages, function (item, showing) {
    clearTimeout(bannerTimer);
    if (showing) {
      bannerShownAt = Date.now();
      banner.textContent = item.token + " → Cabin " + item.cabin + (languages.indexOf("hi") >= 0 ? " · केबिन " + item.cabin : "");
      banner.hidden = false;
    } else {
      bannerTimer = setTimeout(function () { banner.hidden = true; },
        Math.max(0, BANNER_MIN_MS - (Date.now() - bannerShownAt)));
    }
  }, function (blocked) { $("sound-blocked").hidden = !blocked; });

  // Sound: a kiosk browser started with --autoplay-policy=no-user-gesture-required plays at once
  // (docs/operations.md); anywhere else the browser wants one tap or click first.
  var soundButton = $("enable-sound");
  announcer.tryAutoplay(function (playing) {
    if (playing) { return; }
    soundButton.hidden = false;
    soundButton.addEventListener("click", function () { announcer.enable(); soundButton.hidden = true; });
    document.addEventListener("click", function () { announcer.enable(); soundButton.hidden = true; }, { once: true });
  });

  function clock() { $("clock").textContent = localTime(new Date()); }
  clock(); setInterval(clock, 10000);

  function render() {
    var ids = Object.keys(departments).sort(function (a, b) { return departments[a].code < departments[b].code ? -1 : 1; });
    var fragment = document.createDocumentFragment();
    ids.forEach(function (id) {
      var dept = departments[id];
      var parts = Math.max(1, Math.ceil(dept.desks.length / DESKS_PER_SECTION));
      for (var part = 0; part < parts; part++) {
        var section = $("dept-template").content.firstElementChild.cloneNode(true);
        section.style.setProperty("--dept-color", dept.color_code);
        section.setAttribute("data-dept", dept.code);
        window.opdText(section.querySelector(".dept-name"), dept.name + (parts > 1 ? " (" + (part + 1) + "/" + parts + ")" : ""));
        var desks = section.querySelector(".desks");
        dept.desks.slice(part * DESKS_PER_SECTION, (part + 1) * DESKS_PER_SECTION)
          .forEach(function (desk) { desks.appendChild(renderDesk(desk)); });
        fragment.appendChild(section);
      }
    });
    container.replaceChildren(fragment);
    paginate();
  }

  // Tokens shrink to their box when the CSS estimate (board.css, --chars) was not enough for
  // this machine's font: all widths read first, then all sizes written (one layout, not one per
  // token).
  function fitText(elements) {
    var ratios = elements.map(function (el) { return el.clientWidth ? el.scrollWidth / el.clientWidth : 1; });
    var sizes = elements.map(function (el) { return parseFloat(getComputedStyle(el).fontSize); });
    elements.forEach(function (el, i) {
      if (ratios[i] > 1) { el.style.fontSize = (sizes[i] / ratios[i] * 0.97) + "px"; }
    });
  }

  function renderDesk(desk) {
    var el = $("desk-template").content.firstElementChild.cloneNode(true);
    el.setAttribute("data-doctor", desk.doctor_id);
    window.opdText(el.querySelector(".cabin"), desk.cabin_number ? "Cabin " + desk.cabin_number : "");
    window.opdText(el.querySelector(".doctor"), desk.doctor_name + (desk.on_leave ? " · away" : desk.paused ? " · on break" : ""));
    var serving = desk.now_serving;
    var token = el.querySelector(".serving .token");
    window.opdText(token, serving ? serving.token_number : "—");
    token.style.setProperty("--chars", Math.max(4, (serving ? serving.token_number : "—").length));
    window.opdText(el.querySelector(".serving .name"), serving && serving.display_name ? serving.display_name : "");
    if (serving && serving.status === "WAITING") { el.classList.add("calling"); }
    var recent = desk.recent_calls || [];
    if (recent.length) {
      // Patients called in the last minutes, so one who looked away (or a board that was cut
      // off) still sees their number.
      el.querySelector(".recent").hidden = false;
      window.opdText(el.querySelector(".recent-list"), recent.map(function (c) {
        return c.token_number + " " + localTime(new Date(c.called_time));
      }).join(" · "));
    }
    var list = el.querySelector(".next");
    var longest = 4;
    desk.next.forEach(function (n) {
      var li = document.createElement("li");
      li.textContent = n.token_number + (n.display_name ? " · " + n.display_name : "");
      longest = Math.max(longest, li.textContent.length);
      list.appendChild(li);
    });
    list.style.setProperty("--chars", longest);
    return el;
  }

  // Pages: consecutive sections that fit the screen's height together. Measured after each
  // render (a section's height depends on its desks), so the board never scrolls.
  var pages = [], page = 0;
  function paginate() {
    var sections = Array.prototype.slice.call(container.children);
    var limit = container.clientHeight;
    pages = [];
    var i = 0;
    while (i < sections.length) {
      sections.forEach(function (s, k) { s.hidden = k < i; });
      var top = sections[i].offsetTop, j = i;
      while (j < sections.length && sections[j].offsetTop - top + sections[j].offsetHeight <= limit) { j++; }
      if (j === i) { j = i + 1; }   // taller than the screen alone: a page of its own
      pages.push([i, j]);
      i = j;
    }
    page = pages.length ? Math.min(page, pages.length - 1) : 0;
    showPage();
  }
  function showPage() {
    var sections = container.children;
    for (var k = 0; k < sections.length; k++) {
      sections[k].hidden = !(pages[page] && k >= pages[page][0] && k < pages[page][1]);
    }
    fitText(Array.prototype.slice.call(container.querySelectorAll(".dept:not([hidden]) .serving .token, .dept:not([hidden]) .next li")));
    var pager = $("pager");
    pager.hidden = pages.length < 2;
    pager.replaceChildren();
    if (pages.length < 2) { return; }
    pager.appendChild(document.createTextNode((page + 1) + "/" + pages.length));
    for (var p = 0; p < pages.length; p++) {
      var dot = document.createElement("span");
      dot.className = "dot" + (p === page ? " on" : "");
      pager.appendChild(dot);
    }
  }
  setInterval(function () {
    if (pages.length > 1) { page = (page + 1) % pages.length; showPage(); }
  }, PAGE_MS);
  window.addEventListener("resize", paginate);

  function noticeCalls(dept, announce) {
    dept.desks.forEach(function (desk) {
      var s = desk.now_serving;
      var key = s && s.status === "WAITING" ? s.token_number + "|" + s.call_count : "";
      if (announce && key && lastCall[desk.doctor_id] !== key) { announcer.announce(s.token_number, desk.cabin_number || ""); }
      lastCall[desk.doctor_id] = key;
    });
  }

  // Without the server for LOST_AFTER_MS, the whole screen says the numbers may be stale: a
  // yellow "calling" token that is no longer true must not pass for the truth.
  var lostTimer = null, lastLive = Date.now();
  function showLost() {
    $("connection-lost").hidden = false;
    $("connection-lost-since").textContent = "Last update " + localTime(new Date(lastLive));
  }
  function onState(state) {
    if (state === "live") {
      clearTimeout(lostTimer); lostTimer = null;
      $("connection-lost").hidden = true;
    } else if (lostTimer === null) {
      lastLive = Date.now();
      lostTimer = setTimeout(showLost, LOST_AFTER_MS);
    }
  }
  onState("connecting");

  new window.OpdLive(topics, function (topic, data) {
    var list = topic.indexOf("hospital:") === 0 ? data.departments : [data];
    // A whole-hospital board follows each department's topic (app/web/pages.py), or the
    // hospital topic that carries them all.
    list.forEach(function (dept) { noticeCalls(dept, primed[topic]); departments[dept.dept_id] = dept; });
    primed[topic] = true;
    // The notice strip first: the pages are measured in the height it leaves.
    notices.show([].concat.apply([], Object.keys(departments).map(function (id) { return departments[id].notices || []; })));
    render();
  }, { onState: onState });
})();
