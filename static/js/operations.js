// Operations dashboard: live department loads, doctors' statuses and open alerts, with remedies.
(function () {
  "use strict";
  var root = document.getElementById("operations");
  var api = window.OpdApi;

  function cell(tr, text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
  function button(label, onClick) { var b = document.createElement("button"); b.textContent = label; b.addEventListener("click", onClick); return b; }

  var STATUS_LABELS = { BUSY: "BUSY", IDLE: "IDLE (patients waiting, nobody called)",
    CALLED_NOT_SEEN: "CALLED, NOT SEEN", ON_BREAK: "ON BREAK", AVAILABLE: "AVAILABLE", OFFLINE: "OFF SHIFT" };

  // An alert's text with today's figures where the dashboard has them (the alert itself is
  // written by the periodic check and may be a minute old).
  function alertText(a, data) {
    if (a.alert_type === "BOTTLENECK") {
      var dept = data.departments.filter(function (d) { return d.dept_id === a.entity_id; })[0];
      if (dept) { return dept.code + " · " + dept.name + ": " + dept.waiting_count + " waiting, longest wait " + dept.longest_eta + " min"; }
    }
    return a.message;
  }

  function render(data) {
    var loads = document.createDocumentFragment();
    data.departments.forEach(function (d) {
      var tr = document.createElement("tr");
      cell(tr, d.code + " · " + d.name); cell(tr, d.waiting_count); cell(tr, d.desks); cell(tr, d.longest_eta + " min");
      cell(tr, "").appendChild(button("Even out queues", function () {
        api.call("POST", "/api/v1/departments/" + d.dept_id + "/rebalance", {}).then(function (r) {
          api.toast(r.moved ? r.moved + " patient(s) moved to a shorter queue." : "Queues are already even.", "info");
        }).catch(function () {});
      }));
      loads.appendChild(tr);
    });
    document.getElementById("loads").replaceChildren(loads);

    var doctors = document.createDocumentFragment();
    data.doctors.forEach(function (d) {
      var tr = document.createElement("tr");
      cell(tr, d.doctor_name); cell(tr, d.cabin_number || "—");
      // Off shift yet with patients in line: their shift has not been started (a late doctor).
      var label = d.current_status === "OFFLINE" && d.pending_tokens > 0 ? "NOT STARTED (patients waiting)"
        : (STATUS_LABELS[d.current_status] || d.current_status);
      var status = cell(tr, d.on_leave ? "ON LEAVE" : label);
      status.className = "status-" + d.current_status;
      cell(tr, d.pending_tokens);
      doctors.appendChild(tr);
    });
    document.getElementById("doctors").replaceChildren(doctors);

    var alerts = document.createDocumentFragment();
    data.alerts.forEach(function (a) {
      var li = document.createElement("li");
      li.className = "alert-" + a.severity;
      li.textContent = a.alert_type.split("_").join(" ") + ": " + alertText(a, data) + " ";
      if (a.alert_type === "BOTTLENECK") {
        li.appendChild(button("Even out queues", function () {
          api.call("POST", "/api/v1/departments/" + a.entity_id + "/rebalance", {}).catch(function () {});
        }));
      } else if (a.alert_type === "DOCTOR_LATE" || a.alert_type === "DOCTOR_IDLE") {
        li.appendChild(button("Doctor away: move patients", function () {
          var until = new Date(Date.now() + 2 * 3600 * 1000).toISOString();
          if (!window.confirm("Record 2 hours of unplanned leave and move this doctor's waiting patients to colleagues?")) { return; }
          api.call("POST", "/api/v1/doctors/" + a.entity_id + "/leave",
            { exception_type: "UNPLANNED_LEAVE", end_datetime: until, reason: "from the operations dashboard" })
            .then(function (r) { api.toast(r.affected_tokens_count + " patient(s) moved.", "info"); }).catch(function () {});
        }));
      }
      alerts.appendChild(li);
    });
    if (!data.alerts.length) { var none = document.createElement("li"); none.className = "muted"; none.textContent = "No open alerts."; alerts.appendChild(none); }
    document.getElementById("alerts").replaceChildren(alerts);
  }

  new window.OpdLive([root.getAttribute("data-topic")], function (topic, data) { render(data); },
    { onError: function (msg) { api.toast(msg.message); } });

  // Notices on the boards: post one, list those not ended, take one off.
  var noticeForm = document.getElementById("notice-form");
  var noticeList = document.getElementById("notices");
  function loadNotices() {
    api.call("GET", "/api/v1/board-notices").then(function (rows) {
      var items = document.createDocumentFragment();
      rows.forEach(function (n) {
        var li = document.createElement("li");
        li.textContent = (n.dept_code || "All boards") + " · until " +
          new Date(n.ends_at).toLocaleString("en-IN", { timeZone: noticeForm.getAttribute("data-timezone"),
                                                        day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" }) +
          " · " + n.text_en + (n.text_hi ? " · " + n.text_hi : "") + " ";
        li.appendChild(button("Remove", function () {
          api.call("POST", "/api/v1/board-notices/" + n.notice_id + "/remove", {}).then(loadNotices).catch(function () {});
        }));
        items.appendChild(li);
      });
      if (!rows.length) {
        var none = document.createElement("li"); none.className = "muted"; none.textContent = "No notice on the boards.";
        items.appendChild(none);
      }
      noticeList.replaceChildren(items);
    }).catch(function () {});
  }
  noticeForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = noticeForm.elements;
    api.call("POST", "/api/v1/board-notices", {
      text_en: f.text_en.value.trim(), text_hi: f.text_hi.value.trim() || null, dept_id: f.dept_id.value || null,
      ends_at: api.localToIso(f.ends_at.value, noticeForm.getAttribute("data-timezone"))
    }).then(function () {
      api.toast("On the boards now.", "info");
      f.text_en.value = ""; f.text_hi.value = "";
      loadNotices();
    }).catch(function () { /* shown as a toast, the field outlined */ });
  });
  loadNotices();
})();
