// Reception desk: pick a found patient (the list comes from htmx), issue a token, open the slip.
(function () {
  "use strict";
  var api = window.OpdApi;
  var form = document.getElementById("issue-form");
  var KINDS = { walkin: ["WALK_IN", 1], senior: ["WALK_IN", 2], emergency: ["EMERGENCY", 3] };

  function pick(event) {
    var button = event.target.closest("button[data-patient-id]");
    if (!button) { return; }
    form.elements.patient_id.value = button.getAttribute("data-patient-id");
    form.elements.name.value = button.getAttribute("data-name");
    form.elements.phone.value = button.getAttribute("data-phone");
    form.elements.uhid.value = button.getAttribute("data-uhid");
    document.getElementById("chosen-patient").textContent = button.getAttribute("data-uhid");
    samePhone.hidden = true;
  }
  document.getElementById("found").addEventListener("click", pick);

  // Near-duplicates: a phone already registered to other patients is said before a second
  // record is made for the same person ("Use" picks them); issuing anyway needs a second click.
  var samePhone = document.getElementById("same-phone");
  var sameAs = [], newConfirmed = false;
  samePhone.addEventListener("click", pick);
  form.elements.phone.addEventListener("change", function () {
    sameAs = []; newConfirmed = false; samePhone.hidden = true;
    var digits = form.elements.phone.value.replace(/\D/g, "");
    if (digits.length < 10 || form.elements.patient_id.value) { return; }
    api.call("GET", "/api/v1/patients?phone=" + encodeURIComponent(form.elements.phone.value.trim()), undefined,
             { quiet: true }).then(function (rows) {
      sameAs = rows || [];
      if (!sameAs.length) { return; }
      samePhone.replaceChildren(document.createTextNode("Already registered with this phone: "));
      sameAs.slice(0, 5).forEach(function (p) {
        var b = document.createElement("button");
        b.type = "button";
        b.setAttribute("data-patient-id", p.patient_id);
        b.setAttribute("data-name", p.name);
        b.setAttribute("data-phone", p.phone);
        b.setAttribute("data-uhid", p.uhid);
        b.textContent = "Use " + p.name + " · " + p.uhid;
        samePhone.appendChild(b);
      });
      samePhone.hidden = false;
    }).catch(function () { /* a number the server refuses is said when issuing */ });
  });
  ["name", "phone", "uhid"].forEach(function (field) {
    form.elements[field].addEventListener("input", function () {
      form.elements.patient_id.value = "";
      document.getElementById("chosen-patient").textContent = "new";
    });
  });

  // Only the chosen department's doctors: choosing CARD and a GEN doctor once issued a GEN token.
  function filterDoctors() {
    var dept = form.elements.dept_id.value, select = form.elements.doctor_id;
    Array.prototype.forEach.call(select.options, function (o) {
      var other = o.value && o.getAttribute("data-dept") !== dept;
      o.hidden = other; o.disabled = other;
    });
    if (select.selectedOptions[0] && select.selectedOptions[0].disabled) { select.value = ""; }
  }
  form.elements.dept_id.addEventListener("change", filterDoctors);
  filterDoctors();

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = form.elements, kind = KINDS[f.kind.value];
    var body = { booking_type: kind[0], priority: kind[1], visit_reason: f.visit_reason.value || null };
    if (f.doctor_id.value) { body.doctor_id = f.doctor_id.value; } else { body.dept_id = f.dept_id.value; }
    if (f.patient_id.value) { body.patient_id = f.patient_id.value; }
    else if (sameAs.length && !newConfirmed && !sameAs.some(function (p) {
      return p.name.trim().toLowerCase() === f.name.value.trim().toLowerCase(); })) {
      // The same person is likely already registered: ask once before making a second record.
      newConfirmed = true;
      samePhone.hidden = false;
      document.getElementById("issue-result").textContent =
        "This phone belongs to another registered patient. Choose them above, or press Issue token again for a new patient.";
      return;
    }
    else {
      // Consent is explicit: a box the patient agreed to, never on by default (TRAI / DPDP).
      body.patient = { name: f.name.value.trim(), phone: f.phone.value.trim(), preferred_language: f.preferred_language.value,
                       sms_opt_in: f.sms_opt_in.checked, whatsapp_opt_in: f.whatsapp_opt_in.checked };
      if (f.uhid.value.trim()) { body.patient.uhid = f.uhid.value.trim(); }
    }
    var result = document.getElementById("issue-result");
    form.querySelector("button[type=submit]").disabled = true;
    api.call("POST", "/api/v1/tokens", body).then(function (token) {
      result.textContent = "Issued " + token.token_number + ". Opening the slip…";
      window.location.href = "/reception/slip/" + token.token_id;
    }).catch(function (err) { result.textContent = err.message; })
      .then(function () { form.querySelector("button[type=submit]").disabled = false; });
  });
})();
