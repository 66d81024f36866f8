// The waiting-hall TV board: cabins of the chosen departments, now serving and the next five.
(function () {
  "use strict";
  var root = document.getElementById("board");
  var topics = root.getAttribute("data-topics").split(",").filter(Boolean);
  var languages = (root.getAttribute("data-languages") || "en").split(",").filter(Boolean);
  var container = document.getElementById("departments");
  var banner = document.getElementById("announcement");
  var departments = {};     // dept_id -> latest department view
  var lastCall = {};        // doctor_id -> "token|call_count" last seen, to spot new calls
  var primed = false;       // the first snapshot shows state; it does not announce old calls

  var announcer = new window.OpdAnnouncer(languages, function (item, showing) {
    banner.hidden = !showing;
    if (showing) { banner.textContent = item.token + " → Cabin " + item.cabin; }
  });
  var soundButton = document.getElementById("enable-sound");
  if (!announcer.enabled) {
    soundButton.hidden = false;
    soundButton.addEventListener("click", function () { announcer.enable(); soundButton.hidden = true; });
  } else {
    // Remembered from an earlier visit; the browser may still want one tap for audio.
    document.addEventListener("click", function () { announcer.enable(); }, { once: true });
  }

  var timeZone = root.getAttribute("data-timezone") || undefined;
  function clock() {
    // The hospital's own time, whatever the TV's clock setting.
    document.getElementById("clock").textContent =
      new Date().toLocaleTimeString("en-IN", { hour: "2-digit", minute: "2-digit", timeZone: timeZone });
  }
  clock(); setInterval(clock, 10000);

  function render() {
    var ids = Object.keys(departments).sort(function (a, b) { return departments[a].code < departments[b].code ? -1 : 1; });
    var fragment = document.createDocumentFragment();
    ids.forEach(function (id) {
      var dept = departments[id];
      var section = document.getElementById("dept-template").content.firstElementChild.cloneNode(true);
      section.style.setProperty("--dept-color", dept.color_code);
      section.setAttribute("data-dept", dept.code);
      window.opdText(section.querySelector(".dept-name"), dept.name);
      var desks = section.querySelector(".desks");
      dept.desks.forEach(function (desk) { desks.appendChild(renderDesk(desk)); });
      fragment.appendChild(section);
    });
    container.replaceChildren(fragment);
  }

  function renderDesk(desk) {
    var el = document.getElementById("desk-template").content.firstElementChild.cloneNode(true);
    el.setAttribute("data-doctor", desk.doctor_id);
    window.opdText(el.querySelector(".cabin"), desk.cabin_number ? "Cabin " + desk.cabin_number : "");
    window.opdText(el.querySelector(".doctor"), desk.doctor_name + (desk.on_leave ? " · away" : desk.paused ? " · on break" : ""));
    var serving = desk.now_serving;
    window.opdText(el.querySelector(".serving .token"), serving ? serving.token_number : "—");
    window.opdText(el.querySelector(".serving .name"), serving && serving.display_name ? serving.display_name : "");
    if (serving && serving.status === "WAITING") { el.classList.add("calling"); }
    var recent = desk.recent_calls || [];
    if (recent.length) {
      // Patients called in the last minutes, so one who looked away (or a board that was cut
      // off) still sees their number.
      el.querySelector(".recent").hidden = false;
      window.opdText(el.querySelector(".recent-list"), recent.map(function (c) {
        return c.token_number + " " + new Date(c.called_time).toLocaleTimeString("en-IN",
          { hour: "2-digit", minute: "2-digit", timeZone: timeZone });
      }).join(" · "));
    }
    var list = el.querySelector(".next");
    desk.next.forEach(function (n) {
      var li = document.createElement("li");
      li.textContent = n.token_number + (n.display_name ? " · " + n.display_name : "");
      list.appendChild(li);
    });
    return el;
  }

  function noticeCalls(dept) {
    dept.desks.forEach(function (desk) {
      var s = desk.now_serving;
      var key = s && s.status === "WAITING" ? s.token_number + "|" + s.call_count : "";
      if (primed && key && lastCall[desk.doctor_id] !== key) { announcer.announce(s.token_number, desk.cabin_number || ""); }
      lastCall[desk.doctor_id] = key;
    });
  }

  new window.OpdLive(topics, function (topic, data) {
    var list = topic.indexOf("hospital:") === 0 ? data.departments : [data];
    list.forEach(function (dept) { noticeCalls(dept); departments[dept.dept_id] = dept; });
    primed = true;
    render();
  });
})();
