// Cabin door display: now serving and the next two.
(function () {
  "use strict";
  var root = document.getElementById("door");
  var target = document.getElementById("door-desks");
  var notices = new window.OpdNotices(document.getElementById("notices"), true);
  new window.OpdLive([root.getAttribute("data-topic")], function (topic, data) {
    var fragment = document.createDocumentFragment();
    if (!data.desks.length) {
      var idle = document.createElement("p"); idle.className = "muted"; idle.textContent = "No doctor in this cabin now.";
      fragment.appendChild(idle);
    }
    data.desks.forEach(function (desk) {
      var box = document.createElement("section"); box.className = "door-desk";
      var doctor = document.createElement("h2"); doctor.textContent = desk.doctor_name + (desk.paused ? " · on break" : "");
      var serving = document.createElement("div"); serving.className = "door-serving";
      serving.textContent = desk.now_serving ? desk.now_serving.token_number : "—";
      if (desk.now_serving && desk.now_serving.status === "WAITING") { serving.classList.add("calling"); }
      var next = document.createElement("ol"); next.className = "door-next";
      desk.next.forEach(function (n) { var li = document.createElement("li"); li.textContent = n.token_number; next.appendChild(li); });
      box.append(doctor, serving, next);
      fragment.appendChild(box);
    });
    target.replaceChildren(fragment);
    notices.show(data.notices);
  });
})();
